# nlme's approximate (Wald) intervals for the variance parameters of gls and lme fits with correlation
# structures and variance functions (tests/inference/test_residual_intervals.py), on the trial data of
# tests/reference/residual.R.
#
# Regenerate (from the repository root):
#     Rscript tests/reference/intervals.R
# which writes tests/reference/intervals.json. Needs R with nlme and jsonlite (Debian: r-cran-nlme
# r-cran-jsonlite r-cran-numderiv). Versions under "provenance".
#
# nlme's intervals() take the covariance of the parameters from fdHess, a coarse finite-difference
# Hessian; "power_numderiv" recomputes the varPower intervals from numDeriv's Richardson Hessian of the
# same REML log-likelihood (written out below and checked against logLik), the accurate figures.

suppressMessages({
  library(nlme)
  library(numDeriv)
  library(jsonlite)
})
d <- read.csv("tests/reference/data/residual_trial.csv", stringsAsFactors = TRUE)
d <- d[order(d$id, d$visit), ]
d$vn <- as.integer(d$visit)
f <- y ~ arm * visit + base
out <- list(provenance = list(R = R.version.string, nlme = as.character(packageVersion("nlme"))))
grab <- function(ci) {
  res <- list(sigma = unname(ci$sigma[c("lower", "est.", "upper")]))
  if (!is.null(ci$corStruct)) res$cor <- unname(ci$corStruct[1, c("lower", "est.", "upper")])
  if (!is.null(ci$varStruct)) res$var <- unname(ci$varStruct[1, c("lower", "est.", "upper")])
  if (!is.null(ci$reStruct)) res$re <- unname(as.matrix(ci$reStruct[[1]])[1, c("lower", "est.", "upper")])
  res
}
for (method in c("REML", "ML")) {
  out$ar1[[method]] <- grab(intervals(gls(f, d, correlation = corAR1(form = ~ vn | id), method = method), which = "var-cov"))
  out$cs[[method]] <- grab(intervals(gls(f, d, correlation = corCompSymm(form = ~ vn | id), method = method), which = "var-cov"))
  out$ident_ar1[[method]] <- grab(intervals(gls(f, d, correlation = corAR1(form = ~ vn | id),
                                                weights = varIdent(form = ~ 1 | arm), method = method), which = "var-cov"))
  out$ri_ar1[[method]] <- grab(intervals(lme(f, random = ~ 1 | id, data = d, correlation = corAR1(form = ~ vn | id),
                                             method = method), which = "var-cov"))
  out$power[[method]] <- grab(intervals(gls(f, d, weights = varPower(form = ~ base), method = method), which = "var-cov"))
}
m <- gls(f, d, weights = varPower(form = ~ base), method = "REML")
X <- model.matrix(f, d)
reml <- function(par) {  # gls's REML log-likelihood at (delta, log sigma), beta profiled
  vs <- m$modelStruct$varStruct
  coef(vs) <- par[1]
  w <- varWeights(Initialize(vs, d))
  q <- qr(X * w)
  r <- qr.resid(q, d$y * w)
  N <- nrow(X) - ncol(X)
  -0.5 * (N * log(2 * pi * exp(2 * par[2])) + sum(r^2) / exp(2 * par[2]) - 2 * sum(log(w)) +
          2 * sum(log(abs(diag(qr.R(q))))))
}
est <- c(coef(m$modelStruct$varStruct, unconstrained = TRUE), log(m$sigma))
stopifnot(abs(reml(est) - as.numeric(logLik(m))) < 1e-6)
V <- solve(-hessian(reml, est))
z <- qnorm(0.975)
out$power_numderiv$REML <- list(var = c(est[1] - z * sqrt(V[1, 1]), est[1] + z * sqrt(V[1, 1])),
                                sigma = exp(c(est[2] - z * sqrt(V[2, 2]), est[2] + z * sqrt(V[2, 2]))))
out$provenance$numDeriv <- as.character(packageVersion("numDeriv"))
write_json(out, "tests/reference/intervals.json", digits = NA, auto_unbox = TRUE, pretty = TRUE)
