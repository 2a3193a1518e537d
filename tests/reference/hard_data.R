# Hard but valid data sets and lme4's fits of them, for tests/test_hard_data.py.
# Regenerate from the repository root with:   Rscript tests/reference/hard_data.R
# Writes tests/reference/hard/<name>.csv (the data, generated here with fixed seeds) and
# tests/reference/hard_data.json (lme4's estimates).
suppressMessages({library(lme4); library(jsonlite)})
dir.create("tests/reference/hard", showWarnings = FALSE)
sets <- list()

set.seed(101)   # response on a 1e9 scale
g <- factor(rep(sprintf("g%02d", 1:20), each = 10)); x <- rnorm(200)
sets$big_response <- list(data = data.frame(y = 1e9 * (5 + 0.3 * x + rnorm(20)[g] + rnorm(200, sd = 0.5)), x = x, g = g),
                          formula = "y ~ x + (1 | g)")

set.seed(102)   # predictors of scale 1e-6
g <- factor(rep(sprintf("g%02d", 1:25), each = 8)); x <- rnorm(200) * 1e-6; t <- rep(0:7, 25) * 1e-6
sets$tiny_predictors <- list(data = data.frame(y = 2 + 3e5 * x + 1e5 * t + rnorm(25)[g] + rnorm(200), x = x, t = t, g = g),
                             formula = "y ~ x + t + (1 | g)")

set.seed(103)   # near-collinear fixed effects
g <- factor(rep(sprintf("g%02d", 1:30), each = 6)); x1 <- rnorm(180); x2 <- x1 + rnorm(180, sd = 1e-4)
sets$near_collinear <- list(data = data.frame(y = 1 + x1 + x2 + rnorm(30)[g] + rnorm(180), x1 = x1, x2 = x2, g = g),
                            formula = "y ~ x1 + x2 + (1 | g)")

set.seed(104)   # very unbalanced groups: 1 to 10,000 rows
sizes <- c(1, 1, 2, 3, 5, 8, 20, 50, 200, 1000, 10000)
g <- factor(rep(sprintf("g%02d", seq_along(sizes)), sizes)); x <- rnorm(length(g))
sets$unbalanced <- list(data = data.frame(y = 1 + 0.5 * x + rnorm(length(sizes))[g] + rnorm(length(g)), x = x, g = g),
                        formula = "y ~ x + (1 | g)")

set.seed(105)   # 10,000 levels with 1-2 rows each
sizes <- sample(1:2, 10000, replace = TRUE)
g <- factor(rep(sprintf("id%05d", 1:10000), sizes)); x <- rnorm(length(g))
sets$many_levels <- list(data = data.frame(y = 0.5 * x + rnorm(10000, sd = 0.7)[g] + rnorm(length(g)), x = x, g = g),
                         formula = "y ~ x + (1 | g)")

set.seed(106)   # a variance component that is truly zero
g <- factor(rep(sprintf("g%02d", 1:15), each = 10)); x <- rnorm(150)
sets$zero_variance <- list(data = data.frame(y = 1 + x + rnorm(150), x = x, g = g), formula = "y ~ x + (1 | g)")

out <- list(provenance = list(R = R.version.string, lme4 = as.character(packageVersion("lme4")),
                              generated_by = "tests/reference/hard_data.R", date = as.character(Sys.Date())))
for (name in names(sets)) {
  s <- sets[[name]]
  path <- sprintf("tests/reference/hard/%s.csv", name)
  write.csv(s$data, path, row.names = FALSE)
  d <- read.csv(path, stringsAsFactors = TRUE)   # fit exactly what the test reads
  msgs <- character(0)
  m <- withCallingHandlers(lmer(as.formula(s$formula), d),
         warning = function(w) { msgs <<- c(msgs, conditionMessage(w)); invokeRestart("muffleWarning") },
         message = function(w) { msgs <<- c(msgs, trimws(conditionMessage(w))); invokeRestart("muffleMessage") })
  cf <- coef(summary(m)); vc <- as.data.frame(VarCorr(m))
  out[[name]] <- list(file = path, formula = s$formula, nobs = nobs(m), loglik = as.numeric(logLik(m)),
                      theta = unname(getME(m, "theta")), sigma = sigma(m),
                      fixef = list(names = rownames(cf), estimate = unname(cf[, 1]), std_error = unname(cf[, 2])),
                      vcov_re = vc$vcov, singular = isSingular(m), messages = msgs)
  cat(sprintf("%-16s n=%6d loglik %.6f theta %s %s\n", name, nobs(m), out[[name]]$loglik,
              paste(signif(out[[name]]$theta, 5), collapse = ","), paste(msgs, collapse = "; ")))
}
write_json(out, "tests/reference/hard_data.json", digits = NA, auto_unbox = TRUE, pretty = TRUE)
