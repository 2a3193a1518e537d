# Reference values for the variance partition and the implied covariance,
# used by tests/inference/test_partition.py.
#
# Regenerate (from the repository root):  Rscript tests/reference/partition.R
# Needs lme4, performance and jsonlite (Debian: r-cran-lme4 r-cran-performance r-cran-jsonlite).
# Versions are recorded under "provenance".
suppressMessages({library(lme4); library(performance); library(jsonlite)})
models <- list(
  sleep_intercept = list("sleepstudy", "Reaction ~ Days + (1 | Subject)"),
  sleep_slope     = list("sleepstudy", "Reaction ~ Days + (Days | Subject)"),
  penicillin      = list("Penicillin", "diameter ~ 1 + (1 | plate) + (1 | sample)"),
  pastes          = list("Pastes", "strength ~ 1 + (1 | batch/cask)")
)
out <- list()
for (key in names(models)) {
  spec <- models[[key]]
  m <- lmer(as.formula(spec[[2]]), get(spec[[1]]))
  ic <- icc(m)
  r2 <- r2_nakagawa(m)
  entry <- list(dataset = spec[[1]], formula = spec[[2]],
                icc_adjusted = ic$ICC_adjusted, icc_conditional = ic$ICC_conditional,
                r2_marginal = unname(r2$R2_marginal), r2_conditional = unname(r2$R2_conditional))
  vc <- insight::get_variance(m)
  entry$var_fixed <- vc$var.fixed
  entry$var_random <- vc$var.random
  entry$var_residual <- vc$var.residual
  if (length(getME(m, "flist")) > 1) {
    bg <- suppressWarnings(icc(m, by_group = TRUE))
    entry$by_group <- list(group = as.character(bg$Group), icc = bg$ICC)
  }
  out[[key]] <- entry
}
# implied marginal covariance of one subject observed at Days 0..9 under (Days | Subject)
m <- lmer(Reaction ~ Days + (Days | Subject), sleepstudy)
Z <- cbind(1, 0:9)
G <- VarCorr(m)$Subject[, , drop = FALSE]
V <- Z %*% G %*% t(Z) + sigma(m)^2 * diag(10)
implied <- list(days = 0:9, covariance = unname(V), correlation = unname(cov2cor(V)))
m0 <- lmer(Reaction ~ Days + (1 | Subject), sleepstudy)
V0 <- matrix(VarCorr(m0)$Subject[1, 1], 10, 10) + sigma(m0)^2 * diag(10)
implied_intercept <- list(days = 0:9, covariance = unname(V0), correlation = unname(cov2cor(V0)))
provenance <- list(script = "tests/reference/partition.R", R = R.version.string,
                   lme4 = as.character(packageVersion("lme4")), performance = as.character(packageVersion("performance")),
                   insight = as.character(packageVersion("insight")), generated = format(Sys.time(), "%Y-%m-%d"))
writeLines(toJSON(list(provenance = provenance, partition = out, implied_slope = implied, implied_intercept = implied_intercept),
                  digits = NA, auto_unbox = TRUE, pretty = TRUE, na = "null"), "tests/reference/partition.json")
cat("wrote tests/reference/partition.json\n")
