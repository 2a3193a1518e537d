# Reference fits of a known relationship matrix K as the covariance of (1 | id), with repeated records per
# individual, by lme4, used by tests/genetics/test_known_covariance.py.
#
# Regenerate (from the repository root):
#     Rscript tests/reference/genetics_lme4.R
# which simulates (seed 20250501) 120 individuals with 1-4 records each, a genomic relationship matrix K from
# 300 simulated SNPs (standardised genotypes, K = Gs Gs' / m), writes the data to
# tests/reference/data/genetics_records.csv and K (17 significant digits) to tests/reference/data/genetics_K.csv,
# and the fits to tests/reference/genetics_lme4.json.
#
# lme4 has no argument for K, so the fits use its modular interface with the random-effects design replaced,
# as pedigreemm and lme4qtl do: with K = L L' (L = U diag(sqrt(s)) from eigen(K)), b = sigma_g L u with u iid,
# so the rows of Zt for the id term become t(L) %*% Zt. theta, sigma, the fixed effects and the criterion are
# then those of the model with Var(b) = sigma^2 theta^2 K.
# Needs R with lme4, Matrix and jsonlite (Debian: r-cran-lme4 r-cran-jsonlite). Versions are stored under
# "provenance".

suppressMessages({library(lme4); library(Matrix); library(jsonlite)})

set.seed(20250501)
q <- 120
m <- 300
freq <- runif(m, 0.1, 0.5)
G <- sapply(freq, function(p) rbinom(q, 2, p))
G <- G[, apply(G, 2, sd) > 0]
Gs <- scale(G)
K <- tcrossprod(Gs) / ncol(Gs)
ids <- sprintf("ind%03d", seq_len(q))
dimnames(K) <- list(ids, ids)
nrec <- sample(1:4, q, replace = TRUE)
idx <- rep(seq_len(q), nrec)
n <- length(idx)
ev <- eigen(K, symmetric = TRUE)
Lk <- ev$vectors %*% diag(sqrt(pmax(ev$values, 0)))
g <- as.vector(Lk %*% rnorm(q)) * 1.2
fam <- sprintf("f%02d", (idx - 1) %/% 6 + 1)
famfx <- rnorm(20, sd = 0.6)
d <- data.frame(
  y = 10 + g[idx] + famfx[(idx - 1) %/% 6 + 1] + rnorm(n),
  x = rnorm(n),
  sex = c("F", "M")[sample(1:2, q, replace = TRUE)][idx],
  id = ids[idx],
  fam = fam
)
d$y <- d$y + 0.5 * d$x + 0.8 * (d$sex == "M")
write.csv(d, "tests/reference/data/genetics_records.csv", row.names = FALSE)
Kout <- data.frame(id = ids, K, check.names = FALSE)
write.csv(format(Kout, digits = 17), "tests/reference/data/genetics_K.csv", row.names = FALSE, quote = FALSE)

# K as read back from the CSV, so that R and the tests use the same numbers
Kr <- as.matrix(read.csv("tests/reference/data/genetics_K.csv", row.names = 1, check.names = FALSE))
d <- read.csv("tests/reference/data/genetics_records.csv")
d$id <- factor(d$id)
d$fam <- factor(d$fam)

fit_known <- function(formula, reml) {
  lf <- lFormula(formula, data = d, REML = reml)
  lev <- levels(d$id)
  Kl <- Kr[lev, lev]
  e <- eigen(Kl, symmetric = TRUE)
  L <- e$vectors %*% diag(sqrt(pmax(e$values, 0)))
  first <- which(names(lf$reTrms$cnms) == "id")
  stopifnot(length(first) == 1)
  rows <- (lf$reTrms$Gp[first] + 1):lf$reTrms$Gp[first + 1]
  Zt <- lf$reTrms$Zt
  Zt[rows, ] <- Matrix(t(L) %*% as.matrix(Zt[rows, ]), sparse = TRUE)
  lf$reTrms$Zt <- Zt
  devfun <- do.call(mkLmerDevfun, lf)
  opt <- optimizeLmer(devfun, control = list(xtol_abs = 1e-12, ftol_abs = 1e-14))
  fit <- mkMerMod(environment(devfun), opt, lf$reTrms, fr = lf$fr)
  vc <- as.data.frame(VarCorr(fit))
  list(
    formula = deparse(formula), reml = reml, theta = unname(getME(fit, "theta")),
    theta_names = names(getME(fit, "theta")),
    sigma = sigma(fit), beta = unname(fixef(fit)), beta_names = names(fixef(fit)),
    se = unname(sqrt(diag(as.matrix(vcov(fit))))), objective = unname(opt$fval),
    loglik = as.numeric(logLik(fit)),
    varcorr = list(grp = vc$grp, vcov = vc$vcov)
  )
}

fits <- list()
for (f in list(y ~ x + sex + (1 | id), y ~ x + sex + (1 | id) + (1 | fam))) {
  for (reml in c(TRUE, FALSE)) fits[[length(fits) + 1]] <- fit_known(f, reml)
}
out <- list(
  provenance = list(R = R.version.string, lme4 = as.character(packageVersion("lme4")),
                    Matrix = as.character(packageVersion("Matrix"))),
  n = nrow(d), q = q, fits = fits
)
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE), "tests/reference/genetics_lme4.json")
