# Times lmerTest/pbkrtest/lme4 inference; called by benchmarks/bench_inference.py when R is present.
# Usage: Rscript benchmarks/inference_timing.R <reps> <crossed_csv>
# Prints one JSON object of median elapsed seconds.
suppressMessages({library(lme4); library(lmerTest); library(pbkrtest); library(jsonlite)})
args <- commandArgs(trailingOnly = TRUE)
reps <- if (length(args) >= 1) as.integer(args[1]) else 5L
crossed <- read.csv(args[2]); crossed$subj <- factor(crossed$subj); crossed$item <- factor(crossed$item)
grouse <- read.csv("src/mixedmodels/datasets/data/grouseticks.csv")
for (v in c("YEAR", "BROOD", "LOCATION")) grouse[[v]] <- factor(grouse[[v]])
med <- function(f, reps) { t <- numeric(reps); for (i in seq_len(reps)) { t0 <- proc.time()[["elapsed"]]; f(); t[i] <- proc.time()[["elapsed"]] - t0 }; median(t) }
ss <- lme4::lmer(Reaction ~ Days + (Days | Subject), sleepstudy)
gt <- lme4::lmer(log1p(TICKS) ~ YEAR * HEIGHT + (1 | BROOD) + (1 | LOCATION), grouse)
cr <- lme4::lmer(y ~ x + (1 | subj) + (1 | item), crossed)
out <- list(
  sleep_satterthwaite = med(function() coef(summary(as_lmerModLmerTest(ss))), reps),
  sleep_kenward_roger = med(function() coef(summary(as_lmerModLmerTest(ss), ddf = "Kenward-Roger")), reps),
  grouse_anova_satterthwaite = med(function() anova(as_lmerModLmerTest(gt)), reps),
  grouse_anova_kenward_roger = med(function() anova(as_lmerModLmerTest(gt), ddf = "Kenward-Roger"), reps),
  sleep_profile = med(function() suppressMessages(confint(ss, method = "profile")), reps),
  crossed_satterthwaite = med(function() coef(summary(as_lmerModLmerTest(cr))), 1),
  crossed_kenward_roger = med(function() coef(summary(as_lmerModLmerTest(cr), ddf = "Kenward-Roger")), 1),
  crossed_rows = nrow(crossed),
  versions = list(R = R.version.string, lmerTest = as.character(packageVersion("lmerTest")),
                  pbkrtest = as.character(packageVersion("pbkrtest")))
)
cat(toJSON(out, auto_unbox = TRUE, digits = NA), "\n")
