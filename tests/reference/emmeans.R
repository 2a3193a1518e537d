# Reference values for least-squares means (estimated marginal means), used by
# tests/inference/test_emmeans.py.
#
# Regenerate (from the repository root):
#     Rscript tests/reference/emmeans.R
# which writes tests/reference/emmeans.json and the simulated data set
# tests/reference/data/emmeans_trial.csv (fixed seed; the CSV is what both sides fit).
#
# Needs R with lme4, lmerTest, pbkrtest, emmeans and jsonlite
# (Debian/Ubuntu: apt-get install r-cran-lme4 r-cran-lmertest r-cran-pbkrtest r-cran-emmeans
# r-cran-jsonlite). Package versions are recorded in the JSON under "provenance".
#
# Every model is fitted with lme4 (REML unless said otherwise) and passed to emmeans with its
# defaults (Kenward-Roger df and SEs, cov.reduce = mean, cov.keep = "2", weights = "equal")
# unless the case says otherwise. For each emmeans() call the JSON holds the summary table, the
# linear functions (emmGrid@linfct, over lme4's full model-matrix columns, dropped ones included)
# and, per contrast() call, its summary and linear functions; for each fit fixef, vcov and (REML)
# pbkrtest's vcovAdj, so that the tests can check the means as exact functions of them.
#
# Cases:
#   sleepstudy   Days >= 2, Reaction ~ factor(Days) + (Days | Subject): a coerced factor,
#                pairwise (tukey), revpairwise, trt.vs.ctrl (dunnettx) and every adjust method
#   cake         recipe * temperature (temperature made an unordered factor, so that the linear
#                functions are over treatment-coded columns), and recipe * poly(temp, 2),
#                recipe + log(temp): numeric transforms evaluated at the mean of temp
#   trial        simulated arm x visit trial with dropout, baseline covariate and a 0/1 numeric
#                covariate (female, kept as two grid values by cov.keep = "2"); by-groups, averaging
#                with each weights option, custom contrasts, Satterthwaite, asymptotic, level 0.9
#   trial_ml     the same model by ML with lmer.df = "satterthwaite"; the JSON also records what
#                emmeans' default (Kenward-Roger) gives for an ML fit (pbkrtest refits by REML)
#   trial_rd     rank deficient: no TRT-HD rows at W12 (lme4 drops armTRT-HD:visitW12);
#                non-estimable means and contrasts are NA
#   trial_offset offset(log(expo)) in the formula: the mean offset is added to every mean
#   trial_weights prior weights (weights = expo), Satterthwaite only (pbkrtest ignores prior weights)

suppressMessages({
  library(lme4)
  library(lmerTest)
  library(pbkrtest)
  library(emmeans)
  library(jsonlite)
})

out_path <- "tests/reference/emmeans.json"
trial_path <- "tests/reference/data/emmeans_trial.csv"

# ------------------------------------------------------------------ simulated trial
set.seed(20240611)
arms <- c("PBO", "TRT", "TRT-HD")
visits <- c("W02", "W04", "W08", "W12")
n_per <- 30
ns <- n_per * length(arms)
subjects <- data.frame(subject = sprintf("S%03d", seq_len(ns)), arm = rep(arms, each = n_per),
                       female = rbinom(ns, 1, 0.5), base = round(rnorm(ns, 50, 8), 1))
u <- rnorm(ns, 0, 4)
mu <- rbind(PBO = c(-1, -1.5, -2, -2.5), TRT = c(-2, -3.5, -5, -6), "TRT-HD" = c(-2.5, -4.5, -6.5, -8))
rows <- list()
for (i in seq_len(ns)) {
  last <- length(visits)
  for (j in 1:3) if (runif(1) < c(0.08, 0.10, 0.12)[j]) { last <- j; break }  # dropout after visit j
  for (j in seq_len(last)) {
    y <- mu[subjects$arm[i], j] + 0.3 * (subjects$base[i] - 50) + 1.2 * subjects$female[i] + u[i] + rnorm(1, 0, 3)
    if (runif(1) < 0.03) y <- NA  # an intermittent missing value (the row is dropped by the fit)
    rows[[length(rows) + 1]] <- data.frame(subject = subjects$subject[i], arm = subjects$arm[i], visit = visits[j],
                                           female = subjects$female[i], base = subjects$base[i], chg = round(y, 2))
  }
}
trial <- do.call(rbind, rows)
trial$expo <- 1 + as.integer(substr(trial$subject, 2, 4)) %% 5  # an exposure for the offset and weights cases
write.csv(trial, trial_path, row.names = FALSE, na = "")

read_trial <- function() {
  d <- read.csv(trial_path, stringsAsFactors = FALSE)
  d$arm <- factor(d$arm, levels = arms)
  d$visit <- factor(d$visit, levels = visits)
  d
}
trial <- read_trial()
trial_rd <- subset(trial, !(arm == "TRT-HD" & visit == "W12"))
ss <- subset(sleepstudy, Days >= 2)
cake2 <- cake
cake2$temperature <- factor(cake2$temperature, ordered = FALSE)

# ------------------------------------------------------------------ helpers
num <- function(x) { x <- as.numeric(x); x[is.infinite(x)] <- NA; x }  # JSON has no Inf: df Inf -> null

summ_table <- function(s, est) {
  s <- as.data.frame(s)
  out <- list()
  for (nm in names(s)) {
    x <- s[[nm]]
    out[[nm]] <- if (is.numeric(x) && !(nm %in% attr(s, "pri.vars")) && !(nm %in% attr(s, "by.vars"))) num(x) else as.character(x)
  }
  out$df_infinite <- all(is.infinite(s$df))
  out
}

linfct <- function(g) unname(g@linfct)

emm_case <- function(m, specs, by = NULL, contrasts = list(), ...) {
  e <- if (is.null(by)) emmeans(m, specs, ...) else emmeans(m, specs, by = by, ...)
  s <- summary(e)
  res <- list(specs = specs, by = by, args = list(...), table = summ_table(s), linfct = linfct(e),
              columns = colnames(e@linfct), contrasts = list())
  for (k in seq_along(contrasts)) {
    spec <- contrasts[[k]]
    cargs <- list(e, method = spec$method)
    if (!is.null(spec$adjust)) cargs$adjust <- spec$adjust
    cn <- suppressMessages(do.call(contrast, cargs))
    cs <- summary(cn)
    res$contrasts[[k]] <- list(method = if (is.list(spec$method)) "custom" else spec$method,
                               coefficients = if (is.list(spec$method)) spec$method else NULL,
                               adjust = if (is.null(spec$adjust)) NULL else spec$adjust,
                               adjust_used = attr(cs, "adjust"),
                               table = summ_table(cs), linfct = linfct(cn))
  }
  res
}

fit_case <- function(data_name, data, formula, reml = TRUE, subset = NULL) {
  m <- lme4::lmer(as.formula(formula), data = data, REML = reml)
  list(model = m, info = list(data = data_name, subset = subset, formula = formula, REML = reml,
                              fixef = unname(fixef(m)), fixef_names = names(fixef(m)),
                              vcov = unname(as.matrix(vcov(m))),
                              vcov_adj = if (reml) unname(as.matrix(pbkrtest::vcovAdj(m))) else NULL))
}

adjusts <- c("none", "tukey", "bonferroni", "holm", "sidak", "dunnettx")
all_adjust <- lapply(adjusts, function(a) list(method = "pairwise", adjust = a))

cases <- list()

# ------------------------------------------------------------------ sleepstudy
f <- fit_case("sleepstudy", ss, "Reaction ~ factor(Days) + (Days | Subject)", subset = "Days >= 2")
cases$sleepstudy <- c(f$info, list(emmeans = list(
  emm_case(f$model, "Days", contrasts = c(list(list(method = "pairwise"), list(method = "revpairwise"),
                                              list(method = "trt.vs.ctrl"),
                                              list(method = "trt.vs.ctrl", adjust = "bonferroni"),
                                              list(method = "trt.vs.ctrl", adjust = "tukey")), all_adjust)),
  emm_case(f$model, "Days", lmer.df = "satterthwaite", contrasts = list(list(method = "pairwise"))),
  emm_case(f$model, "Days", lmer.df = "asymptotic", contrasts = list(list(method = "pairwise"),
                                                                     list(method = "trt.vs.ctrl")))
)))

# ------------------------------------------------------------------ cake
f <- fit_case("cake", cake2, "angle ~ recipe * temperature + (1 | recipe:replicate)")
cases$cake <- c(f$info, list(emmeans = list(
  emm_case(f$model, "recipe", contrasts = list(list(method = "pairwise"))),
  emm_case(f$model, "temperature", by = "recipe", contrasts = list(list(method = "pairwise"), list(method = "trt.vs.ctrl"))),
  emm_case(f$model, "recipe", by = "temperature", contrasts = list(list(method = "revpairwise"))),
  emm_case(f$model, c("recipe", "temperature"), contrasts = list(list(method = "trt.vs.ctrl")))
)))
f <- fit_case("cake", cake2, "angle ~ recipe * poly(temp, 2) + (1 | recipe:replicate)")
cases$cake_poly <- c(f$info, list(emmeans = list(
  emm_case(f$model, "recipe", contrasts = list(list(method = "pairwise")))
)))
f <- fit_case("cake", cake2, "angle ~ recipe + log(temp) + (1 | recipe:replicate)")
cases$cake_log <- c(f$info, list(emmeans = list(
  emm_case(f$model, "recipe", contrasts = list(list(method = "pairwise")))
)))

# ------------------------------------------------------------------ trial
trial_formula <- "chg ~ arm * visit + base + female + (1 | subject)"
custom <- list("TRT - PBO" = c(-1, 1, 0), "avg(TRT, TRT-HD) - PBO" = c(-1, 0.5, 0.5))
f <- fit_case("emmeans_trial.csv", trial, trial_formula)
cases$trial <- c(f$info, list(emmeans = list(
  emm_case(f$model, "arm", by = "visit", contrasts = c(list(list(method = "pairwise"), list(method = "revpairwise"),
                                                            list(method = "trt.vs.ctrl"), list(method = custom),
                                                            list(method = custom, adjust = "holm")), all_adjust)),
  emm_case(f$model, "visit", by = "arm", contrasts = list(list(method = "pairwise"), list(method = "trt.vs.ctrl"))),
  emm_case(f$model, "arm", contrasts = list(list(method = "pairwise"), list(method = "trt.vs.ctrl"))),
  emm_case(f$model, "arm", weights = "proportional", contrasts = list(list(method = "pairwise"))),
  emm_case(f$model, "arm", weights = "outer"),
  emm_case(f$model, "arm", weights = "cells", contrasts = list(list(method = "pairwise"))),
  emm_case(f$model, "arm", weights = "flat"),
  emm_case(f$model, "visit"),
  emm_case(f$model, c("arm", "visit"), contrasts = list(list(method = "pairwise"))),
  emm_case(f$model, "arm", by = "visit", level = 0.9),
  emm_case(f$model, "arm", by = "visit", lmer.df = "satterthwaite",
           contrasts = list(list(method = "pairwise"), list(method = "trt.vs.ctrl"))),
  emm_case(f$model, "arm", by = "visit", lmer.df = "asymptotic",
           contrasts = list(list(method = "pairwise"), list(method = "trt.vs.ctrl")))
)))

f <- fit_case("emmeans_trial.csv", trial, trial_formula, reml = FALSE)
ml_default <- emm_case(f$model, "arm", by = "visit", contrasts = list(list(method = "revpairwise")))
cases$trial_ml <- c(f$info, list(emmeans = list(
  emm_case(f$model, "arm", by = "visit", lmer.df = "satterthwaite", contrasts = list(list(method = "revpairwise")))
), emmeans_default_kenward_roger = ml_default))

f <- suppressMessages(fit_case("emmeans_trial.csv", trial_rd, trial_formula, subset = "not (arm == 'TRT-HD' and visit == 'W12')"))
cases$trial_rd <- c(f$info, list(emmeans = list(
  emm_case(f$model, "arm", by = "visit", contrasts = list(list(method = "pairwise"), list(method = "trt.vs.ctrl"),
                                                          list(method = "pairwise", adjust = "bonferroni"))),
  emm_case(f$model, "arm", contrasts = list(list(method = "pairwise"))),
  emm_case(f$model, "visit", by = "arm", contrasts = list(list(method = "pairwise"))),
  emm_case(f$model, c("arm", "visit"), contrasts = list(list(method = "revpairwise")))
)))

# offsets: emmeans adds the mean offset of the rows used to every mean (a covariate ".offset." at its mean)
f <- fit_case("emmeans_trial.csv", trial, "chg ~ arm * visit + base + female + offset(log(expo)) + (1 | subject)")
cases$trial_offset <- c(f$info, list(emmeans = list(
  emm_case(f$model, "arm", by = "visit", contrasts = list(list(method = "trt.vs.ctrl"), list(method = custom))),
  emm_case(f$model, "arm")
)))

# prior weights: cell frequencies stay row counts; Satterthwaite (lmerTest uses the weighted deviance).
# pbkrtest's Kenward-Roger ignores prior weights, so emmeans' default is not a reference here.
m <- lme4::lmer(as.formula(trial_formula), data = trial, weights = expo)
f <- list(model = m, info = list(data = "emmeans_trial.csv", subset = NULL, formula = trial_formula, REML = TRUE,
                                 weights = "expo", fixef = unname(fixef(m)), fixef_names = names(fixef(m)),
                                 vcov = unname(as.matrix(vcov(m))), vcov_adj = NULL))
cases$trial_weights <- c(f$info, list(emmeans = list(
  emm_case(f$model, "arm", by = "visit", lmer.df = "satterthwaite", contrasts = list(list(method = "pairwise"))),
  emm_case(f$model, "arm", lmer.df = "satterthwaite", weights = "proportional")
)))

provenance <- list(
  script = "tests/reference/emmeans.R",
  R = R.version.string,
  lme4 = as.character(packageVersion("lme4")),
  lmerTest = as.character(packageVersion("lmerTest")),
  pbkrtest = as.character(packageVersion("pbkrtest")),
  emmeans = as.character(packageVersion("emmeans")),
  estimability = as.character(packageVersion("estimability")),
  seed = 20240611,
  generated = format(Sys.time(), "%Y-%m-%d")
)

out <- list(provenance = provenance, cases = cases)
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, null = "null", na = "null", pretty = TRUE), out_path)
cat("wrote", out_path, "and", trial_path, "\n")
