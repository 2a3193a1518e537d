# simr's power curve for the sleepstudy-size study of benchmarks/bench_power.py (docs/inference.md,
# "Power by simulation"). simr is not in Debian: it was built from its source at tag 1.0.7 (with the
# binom package it imports) into a private library, R_LIBS=/tmp/rlib.
#
# Run (from the repository root):  R_LIBS=/tmp/rlib Rscript benchmarks/power_simr.R
# Writes benchmarks/power_simr.json. About 15 minutes: simr refits with lme4 and tests with pbkrtest's KR.
suppressMessages({library(lme4); library(simr); library(jsonlite)})
fm <- lmer(Reaction ~ Days + (Days | Subject), sleepstudy)
fixef(fm)["Days"] <- 3
fm30 <- extend(fm, along = "Subject", n = 30)
breaks <- c(6, 12, 18, 30)
nsim <- 1000
set.seed(20241125)
t0 <- proc.time()[["elapsed"]]
pc <- powerCurve(fm30, fixed("Days"), along = "Subject", breaks = breaks, nsim = nsim, progress = FALSE)
elapsed <- proc.time()[["elapsed"]] - t0
s <- summary(pc)
print(s)
out <- list(
  provenance = list(script = "benchmarks/power_simr.R", R = R.version.string, simr = as.character(packageVersion("simr")),
                    lme4 = as.character(packageVersion("lme4")), pbkrtest = as.character(packageVersion("pbkrtest")),
                    generated = format(Sys.time(), "%Y-%m-%d")),
  model = "Reaction ~ Days + (Days | Subject)", effect = "Days", value = 3, test = "Kenward-Roger (simr's default)",
  along = "Subject", nsim = nsim, seed = 20241125, elapsed_seconds = elapsed,
  sizes = I(breaks), successes = I(s$successes), trials = I(s$trials), power = I(s$mean),
  lower = I(s$lower), upper = I(s$upper))
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE), "benchmarks/power_simr.json")
