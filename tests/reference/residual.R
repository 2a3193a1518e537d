# Reference values for residual (R-side) covariance structures (tests/covariance/).
#
# Regenerate (from the repository root):
#     Rscript tests/reference/residual.R
# which simulates a longitudinal trial with a fixed seed, writes it to tests/reference/data/residual_trial.csv,
# reads it back and writes tests/reference/residual.json.
#
# Needs R with nlme, mmrm and jsonlite (Debian: apt-get install r-cran-nlme r-cran-jsonlite; mmrm from CRAN,
# which needs TMB and RcppEigen).  Package versions are recorded in the JSON under "provenance".
#
# Contents (every fit: y ~ arm * visit + base):
#   nlme     nlme::gls fits, REML and ML, keyed by our structure name:
#              us    corSymm(~ vnum | id) + varIdent(~ 1 | visit)      ar1   corAR1(~ vnum | id)
#              ar1h  corAR1 + varIdent                                 cs    corCompSymm(~ 1 | id)
#              csh   corCompSymm + varIdent                            toep  corARMA(~ vnum | id, p = 4)
#              diag  varIdent(~ 1 | visit)                             car1  corCAR1(~ time | id)
#              iid   no structure
#            with logLik, beta, sigma, nlme's natural parameters (coef(..., unconstrained = FALSE)) and
#            getVarCov for the complete subject `complete_id` (and the times of that subject for car1).
#            nlme cannot give a correlation per group: group-specific structures come from mmrm only.
#   lme      nlme::lme fits (REML and ML) with random effects and a residual structure:
#              ri_ar1   random = ~ 1 | id, corAR1(~ vnum | id)
#              ri_ar1h  the same with varIdent(~ 1 | visit)
#              ri_car1  random = ~ 1 | id, corCAR1(~ time | id)
#              rs_diag  random = ~ 1 + time | id, varIdent(~ 1 | visit)
#            with logLik, beta, sigma, G (getVarCov, random effects) and the conditional residual covariance of
#            the complete subject (getVarCov type = "conditional").
#   mmrm     mmrm::mmrm fits (REML and ML) of us, toep, toeph, ad, adh, ar1, ar1h, cs, csh, sp_exp (time | id) and
#            the group-specific us, ar1h and cs (visit | arm / id): logLik, beta, theta_est and the covariance
#            matrix for all visits (VarCorr; one per arm for group-specific fits; for sp_exp the covariance of
#            the complete subject, computed from theta_est as mmrm's C++ does).

suppressMessages({
  library(nlme)
  library(mmrm)
  library(jsonlite)
})

# ------------------------------------------------------------------------------------------- simulated trial
set.seed(20240611)
n_id <- 100
n_vis <- 5
sds <- c(2.0, 2.3, 2.6, 3.0, 3.4)
corr <- outer(1:n_vis, 1:n_vis, function(i, j) 0.75^(abs(i - j)^0.7))
cov_a <- diag(sds) %*% corr %*% diag(sds)
cov_b <- 1.3 * cov_a
rows <- list()
for (i in seq_len(n_id)) {
  arm <- if (i <= n_id / 2) "PBO" else "TRT"
  base <- round(rnorm(1, 50, 8), 1)
  e <- drop(rnorm(n_vis) %*% chol(if (arm == "PBO") cov_a else cov_b))
  # monotone dropout after visit 2, plus a few intermittent misses
  last <- n_vis
  for (v in 3:n_vis) if (runif(1) < 0.08) { last <- v - 1; break }
  keep <- seq_len(last)
  keep <- keep[!(keep > 1 & runif(length(keep)) < 0.04)]
  time <- round((0:(n_vis - 1)) * 4 + c(0, runif(n_vis - 1, -1, 1)), 2)  # weeks, irregular
  mu <- 1 + 0.1 * base + (if (arm == "TRT") -0.4 * (0:(n_vis - 1)) else 0)
  y <- round(mu + e, 3)
  rows[[i]] <- data.frame(id = sprintf("S%03d", i), arm = arm, visit = paste0("V", 1:n_vis), vnum = 1:n_vis,
                          time = time, base = base, y = y)[keep, ]
}
trial <- do.call(rbind, rows)
# shuffle the rows so that binding has to sort them
trial <- trial[sample(nrow(trial)), ]
write.csv(trial, "tests/reference/data/residual_trial.csv", row.names = FALSE)

# Read back what the tests read, so both fit the same numbers (CSV rounding included).
d <- read.csv("tests/reference/data/residual_trial.csv")
d$id <- factor(d$id)
d$arm <- factor(d$arm)
d$visit <- factor(d$visit)
# nlme keeps the rows' order within a subject (corSymm's and getVarCov's matrices follow it) and takes the
# first row's visit as varIdent's reference level: fit on rows sorted by subject and visit.
d <- d[order(d$id, d$vnum), ]
counts <- table(d$id)
complete_id <- names(counts)[counts == n_vis][1]
cid <- d[d$id == complete_id, ]
cid <- cid[order(cid$vnum), ]

fml <- y ~ arm * visit + base

# ------------------------------------------------------------------------------------------------------- nlme
nlme_specs <- list(
  us = list(correlation = quote(corSymm(form = ~ vnum | id)), weights = quote(varIdent(form = ~ 1 | visit))),
  ar1 = list(correlation = quote(corAR1(form = ~ vnum | id)), weights = NULL),
  ar1h = list(correlation = quote(corAR1(form = ~ vnum | id)), weights = quote(varIdent(form = ~ 1 | visit))),
  cs = list(correlation = quote(corCompSymm(form = ~ 1 | id)), weights = NULL),
  csh = list(correlation = quote(corCompSymm(form = ~ 1 | id)), weights = quote(varIdent(form = ~ 1 | visit))),
  toep = list(correlation = quote(corARMA(form = ~ vnum | id, p = 4, q = 0)), weights = NULL),
  diag = list(correlation = NULL, weights = quote(varIdent(form = ~ 1 | visit))),
  car1 = list(correlation = quote(corCAR1(form = ~ time | id)), weights = NULL),
  iid = list(correlation = NULL, weights = NULL)
)
nlme_info <- function(m) {
  ms <- m$modelStruct
  out <- list(loglik = as.numeric(logLik(m)), beta = unname(coef(m)), beta_names = names(coef(m)), sigma = m$sigma)
  if (!is.null(ms$corStruct)) out$cor_natural <- unname(coef(ms$corStruct, unconstrained = FALSE))
  if (!is.null(ms$varStruct)) {
    v <- coef(ms$varStruct, unconstrained = FALSE, allCoef = TRUE)
    out$var_natural <- unname(v)
    out$var_names <- names(v)
  }
  if (is.null(ms$corStruct)) {
    # getVarCov is "not implemented for uncorrelated errors": sigma^2 times the squared varIdent ratios
    ratio <- if (is.null(ms$varStruct)) setNames(rep(1, n_vis), levels(d$visit)) else coef(ms$varStruct, unconstrained = FALSE, allCoef = TRUE)
    out$cov <- diag(m$sigma^2 * unname(ratio[levels(d$visit)])^2, n_vis)
  } else {
    vc <- getVarCov(m, individual = complete_id)
    out$cov <- unname(as.matrix(unclass(vc)[seq_len(n_vis), seq_len(n_vis)]))
  }
  out
}
nlme_fits <- list()
for (name in names(nlme_specs)) {
  s <- nlme_specs[[name]]
  for (method in c("REML", "ML")) {
    m <- eval(bquote(gls(fml, data = d, method = .(method), correlation = .(s$correlation), weights = .(s$weights),
                         control = glsControl(tolerance = 1e-10, msMaxIter = 500, maxIter = 500))))
    nlme_fits[[name]][[method]] <- nlme_info(m)
  }
}

# ---------------------------------------------------------------------------------- nlme::lme (G and R sides)
lme_specs <- list(
  ri_ar1 = list(random = quote(~ 1 | id), correlation = quote(corAR1(form = ~ vnum | id)), weights = NULL),
  ri_ar1h = list(random = quote(~ 1 | id), correlation = quote(corAR1(form = ~ vnum | id)),
                 weights = quote(varIdent(form = ~ 1 | visit))),
  ri_car1 = list(random = quote(~ 1 | id), correlation = quote(corCAR1(form = ~ time | id)), weights = NULL),
  rs_diag = list(random = quote(~ 1 + time | id), correlation = NULL, weights = quote(varIdent(form = ~ 1 | visit)))
)
lme_fits <- list()
for (name in names(lme_specs)) {
  s <- lme_specs[[name]]
  for (method in c("REML", "ML")) {
    m <- eval(bquote(lme(fml, data = d, method = .(method), random = .(s$random), correlation = .(s$correlation),
                         weights = .(s$weights), control = lmeControl(tolerance = 1e-10, msMaxIter = 500,
                                                                       maxIter = 500, msMaxEval = 5000,
                                                                       returnObject = TRUE))))
    g <- getVarCov(m, type = "random.effects")
    r <- getVarCov(m, individuals = complete_id, type = "conditional")[[1]]
    lme_fits[[name]][[method]] <- list(
      random = deparse(s$random), loglik = as.numeric(logLik(m)), beta = unname(fixef(m)), sigma = m$sigma,
      G = unname(matrix(as.numeric(g), nrow(g))), cov = unname(matrix(as.numeric(r), nrow(r))))
  }
}

# ------------------------------------------------------------------------------------------------------- mmrm
mmrm_specs <- c(us = "us(visit | id)", toep = "toep(visit | id)", toeph = "toeph(visit | id)",
                ad = "ad(visit | id)", adh = "adh(visit | id)", ar1 = "ar1(visit | id)", ar1h = "ar1h(visit | id)",
                cs = "cs(visit | id)", csh = "csh(visit | id)", sp_exp = "sp_exp(time | id)",
                us_group = "us(visit | arm / id)", ar1h_group = "ar1h(visit | arm / id)",
                cs_group = "cs(visit | arm / id)")
mmrm_info <- function(m, spec) {
  out <- list(spec = spec, loglik = as.numeric(logLik(m)), beta = unname(component(m, "beta_est")),
              beta_names = names(component(m, "beta_est")), theta = unname(m$theta_est),
              converged = isTRUE(component(m, "convergence") == 0))
  vc <- VarCorr(m)
  if (spec == "sp_exp(time | id)") {
    # covariance exp(theta1) * rho^|t_i - t_j|, rho = plogis(theta2) (src/covariance.h, get_spatial_exponential)
    rho <- plogis(m$theta_est[2])
    out$cov <- exp(m$theta_est[1]) * rho^abs(outer(cid$time, cid$time, "-"))
    out$times <- cid$time
  } else if (is.list(vc)) {
    out$cov <- lapply(vc, function(v) unname(as.matrix(v)))
    out$groups <- names(vc)
  } else {
    out$cov <- unname(as.matrix(vc))
  }
  out
}
mmrm_fits <- list()
for (name in names(mmrm_specs)) {
  for (reml in c(TRUE, FALSE)) {
    f <- as.formula(paste("y ~ arm * visit + base +", mmrm_specs[[name]]))
    m <- suppressWarnings(mmrm(f, data = d, reml = reml))
    mmrm_fits[[name]][[if (reml) "REML" else "ML"]] <- mmrm_info(m, mmrm_specs[[name]])
  }
}

out <- list(
  provenance = list(R = R.version.string, nlme = as.character(packageVersion("nlme")),
                    mmrm = as.character(packageVersion("mmrm")), TMB = as.character(packageVersion("TMB")),
                    seed = 20240611),
  formula = "y ~ arm * visit + base",
  complete_id = complete_id, complete_times = cid$time,
  n = nrow(d), n_subjects = nlevels(d$id), pattern_counts = as.list(table(sapply(split(d$vnum, d$id),
    function(v) paste(sort(v), collapse = "")))),
  nlme = nlme_fits, lme = lme_fits, mmrm = mmrm_fits
)
write_json(out, "tests/reference/residual.json", digits = NA, auto_unbox = TRUE, pretty = TRUE)
