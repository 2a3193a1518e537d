# Reference values for fit_many (many responses on one design), used by tests/many/test_fit_many.py.
#
# Regenerate (from the repository root):  Rscript tests/reference/fit_many.R
# Needs lme4, lmerTest and jsonlite. Writes the data (tests/reference/data/fit_many.csv) and the fits
# (tests/reference/fit_many.json). Versions are recorded under "provenance".
#
# Variance fractions are variancePartition's (calcVarPart / getVarianceComponents, version 1.28+),
# written out here from lme4's fit since variancePartition is not installed: per random-effects column
# the variance attr(VarCorr(fit)[[g]], "stddev")^2, per fixed-effects column other than the intercept
# var(X_j b_j) (n - 1)/n rescaled to add up to var(X b) (n - 1)/n, the residual variance sigma^2, divided by
# their sum.
suppressMessages({library(lmerTest); library(jsonlite)})
set.seed(20240611)
n_ind <- 30; per <- 4; n_batch <- 6; n <- n_ind * per; n_genes <- 12
d <- data.frame(individual = sprintf("I%02d", rep(seq_len(n_ind), each = per)),
                batch = sprintf("B%d", sample(seq_len(n_batch), n, replace = TRUE)),
                condition = rep(c("ctrl", "trt"), length.out = n),
                x = round(rnorm(n), 4))
for (g in seq_len(n_genes)) {
  sd_i <- c(1.2, 0.8, 0, 0.5, 1.5, 0.3, 1, 0.7, 0.9, 0.4, 1.1, 0.6)[g]
  sd_b <- c(0.6, 0, 0.9, 0.4, 0.2, 1.2, 0.5, 0, 0.8, 0.3, 0.7, 0.5)[g]
  y <- 3 + 0.3 * g * d$x + 0.5 * (d$condition == "trt") * (g %% 3) +
       sd_i * rnorm(n_ind)[as.integer(factor(d$individual))] + sd_b * rnorm(n_batch)[as.integer(factor(d$batch))] + rnorm(n)
  d[[sprintf("gene_%02d", g)]] <- round(y, 5)
}
d$gene_05[c(3, 17, 40)] <- NA   # missing values: this gene is fitted on 117 rows
d$gene_09[c(3, 17, 40)] <- NA   # the same rows: one shared design for both
d$gene_11[c(8)] <- NA
write.csv(d, "tests/reference/data/fit_many.csv", row.names = FALSE, na = "NA")

var_parts <- function(fit) {
  vc <- lapply(VarCorr(fit), function(v) attr(v, "stddev")^2)
  X <- getME(fit, "X")
  idx <- which(colnames(X) != "(Intercept)")
  b <- fixef(fit)
  N <- nrow(X)
  fx <- sapply(idx, function(i) X[, i] * b[i])
  colnames(fx) <- colnames(X)[idx]
  fixedVar <- apply(fx, 2, var) * (N - 1) / N
  total <- var(rowSums(fx)) * (N - 1) / N
  out <- unlist(vc)
  names(out) <- gsub("\\.\\(Intercept\\)", "", names(out))
  out <- c(out, fixedVar / sum(fixedVar) * total, Residuals = sigma(fit)^2)
  as.list(out / sum(out))
}

one <- function(gene, rhs, REML) {
  f <- as.formula(paste(gene, rhs))
  fit <- lmer(f, d, REML = REML, control = lmerControl(calc.derivs = TRUE))
  ct <- coef(summary(fit, ddf = "Satterthwaite"))
  list(response = gene, formula = rhs, REML = REML, nobs = nobs(fit),
       theta = unname(getME(fit, "theta")), theta_names = names(getME(fit, "theta")),
       loglik = as.numeric(logLik(fit)), sigma = sigma(fit), singular = isSingular(fit),
       terms = rownames(ct), estimate = unname(ct[, "Estimate"]), se = unname(ct[, "Std. Error"]),
       df = unname(ct[, "df"]), p_value = unname(ct[, "Pr(>|t|)"]), fractions = var_parts(fit))
}
genes <- sprintf("gene_%02d", seq_len(n_genes))
rhs <- "~ x + condition + (1 | individual) + (1 | batch)"
fits <- lapply(genes, function(g) suppressMessages(one(g, rhs, TRUE)))
ml <- lapply(genes[1:4], function(g) suppressMessages(one(g, rhs, FALSE)))
slope <- lapply(genes[c(1, 2, 5, 7)], function(g) suppressMessages(one(g, "~ x + (x | individual) + (1 | batch)", TRUE)))
provenance <- list(script = "tests/reference/fit_many.R", R = R.version.string, lme4 = as.character(packageVersion("lme4")),
                   lmerTest = as.character(packageVersion("lmerTest")), generated = format(Sys.time(), "%Y-%m-%d"))
writeLines(toJSON(list(provenance = provenance, reml = fits, ml = ml, slope = slope), digits = NA, auto_unbox = TRUE,
                  pretty = TRUE, na = "null"), "tests/reference/fit_many.json")
cat("wrote tests/reference/fit_many.json\n")
