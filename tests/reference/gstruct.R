# Reference fits for structured random-effects covariances (G-side: us, diag, homdiag, cs, homcs, ar1),
# used by tests/covariance/test_random_structures.py.
#
# Regenerate (from the repository root):
#     Rscript tests/reference/gstruct.R
# which simulates two data sets with fixed seeds, writes them to tests/reference/data/gstruct_long.csv and
# tests/reference/data/gstruct_cs.csv, reads them back and writes tests/reference/gstruct.json.
#
# Needs R with glmmTMB, lme4 and jsonlite (Debian: apt-get install r-cran-lme4 r-cran-jsonlite; glmmTMB from
# CRAN, which needs TMB and RcppEigen). Package versions are recorded in the JSON under "provenance".
#
# glmmTMB 1.1.5 has us, diag, cs and ar1 (homogeneous variance) but no homdiag, homcs or hetar1 (homdiag came
# in 1.1.6, hetar1 in 1.1.11). The homogeneous variants are fitted here as glmmTMB's diag and cs with their
# standard deviations tied by `map` (one shared log-SD), and also as the lme4 models they equal:
#     homdiag(0 + visit | subject)  ==  (1 | subject:visit)
#     homcs(0 + visit | subject)    ==  (1 | subject) + (1 | subject:visit)   (when the correlation is >= 0)
# and diag(Days | Subject) == (Days || Subject), us(Days | Subject) == (Days | Subject) in lme4 1.1-31.
#
# Every fit is by REML and by ML (glmmTMB's REML integrates the fixed effects out, which is lme4's REML).
# glmmTMB is run with its defaults (a tighter nlminb rel.tol stops with "singular convergence (7)" on
# sleepstudy); "max_gradient" records the largest absolute gradient at its optimum.
#
# Stored per fit: logLik, fixed effects and their standard errors (vcov(m)$cond for glmmTMB), sigma, and per
# random-effects term the standard deviations ("sd", one per column) and the correlation matrix ("cor").

suppressMessages({
  library(glmmTMB)
  library(lme4)
  library(jsonlite)
})

out_path <- "tests/reference/gstruct.json"
long_path <- "tests/reference/data/gstruct_long.csv"
cs_path <- "tests/reference/data/gstruct_cs.csv"

# ------------------------------------------------------------------------------------- longitudinal data
# 50 subjects, 4 visits, 2 replicate measurements per visit, ~6% of rows missing; subject-by-visit random
# effects with an AR(1) correlation across visits (sd 1.5, rho 0.7) plus noise sd 1.
set.seed(20250301)
n_sub <- 50
n_vis <- 4
ar_cor <- outer(1:n_vis, 1:n_vis, function(i, j) 0.7^abs(i - j))
rows <- list()
for (i in seq_len(n_sub)) {
  arm <- if (i %% 2 == 0) "B" else "A"
  b <- drop(rnorm(n_vis) %*% chol(1.5^2 * ar_cor))
  for (v in seq_len(n_vis)) for (r in 1:2) {
    y <- 10 + 0.5 * v + (if (arm == "B") 0.8 else 0) + b[v] + rnorm(1)
    rows[[length(rows) + 1]] <- data.frame(subject = sprintf("S%02d", i), arm = arm, visit = paste0("V", v),
                                           rep = r, y = round(y, 4))
  }
}
long <- do.call(rbind, rows)
long <- long[runif(nrow(long)) > 0.06, ]
write.csv(long, long_path, row.names = FALSE)
long <- read.csv(long_path, stringsAsFactors = TRUE)

# ---------------------------------------------------------------------- three correlated random slopes
# 40 groups of 15; random intercept and slopes of x1, x2 with sds (2, 1, 0.8) and one correlation 0.4.
set.seed(20250302)
n_g <- 40
m <- 15
sds <- c(2, 1, 0.8)
R <- matrix(0.4, 3, 3); diag(R) <- 1
rows <- list()
for (g in seq_len(n_g)) {
  b <- drop(rnorm(3) %*% chol(diag(sds) %*% R %*% diag(sds)))
  x1 <- round(rnorm(m), 3)
  x2 <- round(runif(m, -1, 1), 3)
  y <- 1 + 0.5 * x1 - 0.3 * x2 + b[1] + b[2] * x1 + b[3] * x2 + rnorm(m, sd = 0.7)
  rows[[g]] <- data.frame(g = sprintf("G%02d", g), x1 = x1, x2 = x2, y = round(y, 4))
}
write.csv(do.call(rbind, rows), cs_path, row.names = FALSE)
csdat <- read.csv(cs_path, stringsAsFactors = TRUE)

data(sleepstudy, package = "lme4")

# ------------------------------------------------------------------------------------------- fitting
ctrl <- glmmTMBControl()

fe_table <- function(beta, V) {
  list(names = I(names(beta)), estimate = I(unname(beta)), se = I(unname(sqrt(diag(as.matrix(V))))))
}

tmb_terms <- function(m) {
  vc <- VarCorr(m)$cond
  lapply(vc, function(S) list(sd = I(unname(attr(S, "stddev"))), cor = unname(as.matrix(attr(S, "correlation")))))
}

tmb_fit <- function(formula, data, reml, map = NULL) {
  m <- if (is.null(map)) glmmTMB(formula, data = data, REML = reml, control = ctrl)
       else glmmTMB(formula, data = data, REML = reml, control = ctrl, map = map)
  stopifnot(m$fit$convergence == 0)
  list(formula = deparse1(formula), REML = reml, logLik = as.numeric(logLik(m)),
       fixed = fe_table(fixef(m)$cond, vcov(m)$cond), sigma = sigma(m), terms = tmb_terms(m),
       max_gradient = max(abs(m$sdr$gradient.fixed)), theta = I(unname(getME(m, "theta"))))
}

lme4_fit <- function(formula, data, reml) {
  m <- lmer(formula, data = data, REML = reml)
  vc <- VarCorr(m)
  list(formula = deparse1(formula), REML = reml, logLik = as.numeric(logLik(m)),
       fixed = fe_table(fixef(m), vcov(m)), sigma = sigma(m),
       terms = lapply(vc, function(S) list(sd = I(unname(attr(S, "stddev"))), cor = unname(as.matrix(attr(S, "correlation"))))),
       theta = I(unname(getME(m, "theta"))), singular = isSingular(m))
}

both <- function(f) list(REML = f(TRUE), ML = f(FALSE))

# glmmTMB's theta for diag(0 + visit | subject): 4 log-SDs; for cs: 4 log-SDs then the correlation's.
tie_diag <- list(theta = factor(rep(1, n_vis)))
tie_cs <- list(theta = factor(c(rep(1, n_vis), 2)))

fits <- list(
  # sleepstudy
  sleep_diag = both(function(r) tmb_fit(Reaction ~ Days + diag(Days | Subject), sleepstudy, r)),
  sleep_diag_lme4 = both(function(r) lme4_fit(Reaction ~ Days + (Days || Subject), sleepstudy, r)),
  sleep_us = both(function(r) tmb_fit(Reaction ~ Days + us(Days | Subject), sleepstudy, r)),
  sleep_us_lme4 = both(function(r) lme4_fit(Reaction ~ Days + (Days | Subject), sleepstudy, r)),
  # three correlated slopes
  cs3 = both(function(r) tmb_fit(y ~ x1 + x2 + cs(1 + x1 + x2 | g), csdat, r)),
  cs3_us_lme4 = both(function(r) lme4_fit(y ~ x1 + x2 + (1 + x1 + x2 | g), csdat, r)),
  # longitudinal
  long_ar1 = both(function(r) tmb_fit(y ~ arm + visit + ar1(0 + visit | subject), long, r)),
  long_cs = both(function(r) tmb_fit(y ~ arm + visit + cs(0 + visit | subject), long, r)),
  long_diag = both(function(r) tmb_fit(y ~ arm + visit + diag(0 + visit | subject), long, r)),
  long_homdiag = both(function(r) tmb_fit(y ~ arm + visit + diag(0 + visit | subject), long, r, map = tie_diag)),
  long_homdiag_lme4 = both(function(r) lme4_fit(y ~ arm + visit + (1 | subject:visit), long, r)),
  long_homcs = both(function(r) tmb_fit(y ~ arm + visit + cs(0 + visit | subject), long, r, map = tie_cs)),
  long_homcs_lme4 = both(function(r) lme4_fit(y ~ arm + visit + (1 | subject) + (1 | subject:visit), long, r)),
  long_us_lme4 = both(function(r) lme4_fit(y ~ arm + visit + (0 + visit | subject), long, r))
)

out <- list(
  provenance = list(R = R.version.string, glmmTMB = as.character(packageVersion("glmmTMB")),
                    TMB = as.character(packageVersion("TMB")), lme4 = as.character(packageVersion("lme4")),
                    seeds = c(20250301, 20250302)),
  fits = fits
)
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE, matrix = "rowmajor"), out_path)
cat("wrote", out_path, "\n")
