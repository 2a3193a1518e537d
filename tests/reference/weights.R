# Reference values for prior weights and offsets (tests/test_weights_offsets.py).
#
# Regenerate (from the repository root):
#     Rscript tests/reference/weights.R
# which writes tests/reference/weights.json and tests/reference/data/weights_sleepstudy.csv.
#
# Needs R with lme4, lmerTest, pbkrtest and jsonlite (Debian: r-cran-lme4 r-cran-lmertest r-cran-pbkrtest
# r-cran-jsonlite). Package versions are recorded under "provenance".
#
# Data: lme4's sleepstudy with a weight w (1 to 3, fixed seed) and an exposure-like column e.
# Models (REML unless said):
#   weighted      Reaction ~ Days + (Days | Subject), weights = w
#   weighted_ml   the same by ML
#   offset_formula Reaction ~ Days + offset(2 * e) + (1 | Subject)
#   offset_arg    Reaction ~ Days + (1 | Subject), offset = e
#   both          Reaction ~ Days + offset(log(e)) + (Days | Subject), weights = w
# For each: logLik, REML criterion or deviance, fixef, SEs, theta, sigma, fitted values, lmerTest
# Satterthwaite df, pbkrtest KR df (REML fits), and predictions for three new rows (re.form = NA and with
# random effects).
# pbkrtest 0.5.2 ignores prior weights (its residual covariance is sigma^2 I: .get_SigmaG), so its KR df of a
# weighted fit are not the weighted model's. kr_whitened: the same weighted model written without weights
# (rows of y, X and Z multiplied by sqrt(w); lambda, beta and sigma are unchanged), where pbkrtest is right.

suppressMessages({
  library(lme4)
  library(lmerTest)
  library(pbkrtest)
  library(jsonlite)
})

set.seed(20261125)
d <- sleepstudy
d$w <- round(runif(nrow(d), 1, 3), 2)
d$e <- round(runif(nrow(d), 1, 5), 2)
write.csv(d, "tests/reference/data/weights_sleepstudy.csv", row.names = FALSE)
d <- read.csv("tests/reference/data/weights_sleepstudy.csv")
d$Subject <- factor(d$Subject)
new <- data.frame(Days = c(0, 4.5, 9), Subject = factor(c("308", "309", "372"), levels = levels(d$Subject)),
                  e = c(1.5, 2, 4), w = c(1, 1, 1))

info <- function(m, reml) {
  ct_s <- coef(summary(m, ddf = "Satterthwaite"))
  out <- list(loglik = as.numeric(logLik(m)), criterion = if (reml) REMLcrit(m) else deviance(m),
              beta = unname(fixef(m)), se = unname(ct_s[, "Std. Error"]), theta = unname(getME(m, "theta")),
              sigma = sigma(m), fitted = unname(fitted(m)), residuals = unname(residuals(m)),
              df_satterthwaite = unname(ct_s[, "df"]),
              predict_fixed = unname(predict(m, newdata = new, re.form = NA)),
              predict = unname(predict(m, newdata = new)))
  if (reml) {
    ct_k <- coef(summary(m, ddf = "Kenward-Roger"))
    out$df_kr <- unname(ct_k[, "df"])
    out$se_kr <- unname(ct_k[, "Std. Error"])
  }
  out
}

fits <- list(
  weighted = list(formula = "Reaction ~ Days + (Days | Subject)", weights = "w", offset = NULL, reml = TRUE),
  weighted_ml = list(formula = "Reaction ~ Days + (Days | Subject)", weights = "w", offset = NULL, reml = FALSE),
  offset_formula = list(formula = "Reaction ~ Days + offset(2 * e) + (1 | Subject)", weights = NULL, offset = NULL, reml = TRUE),
  offset_arg = list(formula = "Reaction ~ Days + (1 | Subject)", weights = NULL, offset = "e", reml = TRUE),
  both = list(formula = "Reaction ~ Days + offset(log(e)) + (Days | Subject)", weights = "w", offset = NULL, reml = TRUE)
)
out <- list(provenance = list(R = R.version.string, lme4 = as.character(packageVersion("lme4")),
                              lmerTest = as.character(packageVersion("lmerTest")),
                              pbkrtest = as.character(packageVersion("pbkrtest"))),
            newdata = new)
for (name in names(fits)) {
  f <- fits[[name]]
  args <- list(formula = as.formula(f$formula), data = d, REML = f$reml)
  if (!is.null(f$weights)) args$weights <- d[[f$weights]]
  if (!is.null(f$offset)) args$offset <- d[[f$offset]]
  m <- do.call(lmerTest::lmer, args)
  out[[name]] <- c(f[c("formula", "weights", "offset", "reml")], info(m, f$reml))
}
d$sw <- sqrt(d$w)
d$swy <- d$sw * d$Reaction
d$swd <- d$sw * d$Days
mw <- lmerTest::lmer(swy ~ 0 + sw + swd + (0 + sw + swd | Subject), data = d)
ct_w <- coef(summary(mw, ddf = "Kenward-Roger"))
out$kr_whitened <- list(formula = "swy ~ 0 + sw + swd + (0 + sw + swd | Subject)", beta = unname(fixef(mw)),
                        df_kr = unname(ct_w[, "df"]), se_kr = unname(ct_w[, "Std. Error"]),
                        df_satterthwaite = unname(coef(summary(mw, ddf = "Satterthwaite"))[, "df"]))
write_json(out, "tests/reference/weights.json", digits = NA, auto_unbox = TRUE, pretty = TRUE, null = "null")
