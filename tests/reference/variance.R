# Reference values for variance functions (tests/test_variance_functions.py): nlme's varIdent, varPower and
# varExp of a covariate and varPower of the fitted values, alone (gls) and with a correlation structure or random effects, on the trial data of
# tests/reference/residual.R.
#
# Regenerate (from the repository root):
#     Rscript tests/reference/variance.R
# which writes tests/reference/variance.json. Needs R with nlme and jsonlite (Debian: r-cran-nlme
# r-cran-jsonlite). Versions under "provenance".

suppressMessages({
  library(nlme)
  library(jsonlite)
})
d <- read.csv("tests/reference/data/residual_trial.csv", stringsAsFactors = TRUE)
d <- d[order(d$id, d$visit), ]
d$vn <- as.integer(d$visit)
f <- y ~ arm * visit + base
out <- list(provenance = list(R = R.version.string, nlme = as.character(packageVersion("nlme"))))
info <- function(m) {
  vf <- coef(m$modelStruct$varStruct, unconstrained = FALSE)
  list(loglik = as.numeric(logLik(m)), beta = unname(coef(m)), sigma = m$sigma, varpar = unname(vf),
       varnames = names(vf))
}
infol <- function(m) {
  vf <- coef(m$modelStruct$varStruct, unconstrained = FALSE)
  list(loglik = as.numeric(logLik(m)), beta = unname(fixef(m)), sigma = m$sigma, varpar = unname(vf),
       varnames = names(vf))
}
for (method in c("REML", "ML")) {
  out$ident[[method]] <- info(gls(f, d, weights = varIdent(form = ~ 1 | arm), method = method))
  out$power[[method]] <- info(gls(f, d, weights = varPower(form = ~ base), method = method))
  out$exp[[method]] <- info(gls(f, d, weights = varExp(form = ~ time), method = method))
  out$ident_ar1[[method]] <- info(gls(f, d, weights = varIdent(form = ~ 1 | arm),
                                      correlation = corAR1(form = ~ vn | id), method = method))
  out$ri_exp[[method]] <- infol(lme(f, random = ~ 1 | id, data = d, weights = varExp(form = ~ time), method = method))
  # a power of the fitted values, nlme's default varPower() (form = ~ fitted(.)): Xβ for gls, Xβ + Zb for lme
  out$power_fitted[[method]] <- info(gls(f, d, weights = varPower(), method = method))
  out$ri_power_fitted[[method]] <- infol(lme(f, random = ~ 1 | id, data = d, weights = varPower(), method = method))
}
write_json(out, "tests/reference/variance.json", digits = NA, auto_unbox = TRUE, pretty = TRUE)
