# Reference values for model choice (tests/inference/test_select.py): lmerTest's ranova() and step(),
# lme4's allFit(), and the information criteria of candidate random-effects and residual structures.
#
# Regenerate (from the repository root):
#     Rscript tests/reference/select.R
# which writes tests/reference/select.json and tests/reference/data/ham.csv (lmerTest's ham data with
# its factor levels prefixed by a letter, so that a CSV reader sees them as text).
#
# Needs R with lme4, lmerTest, nlme, optimx, dfoptim and jsonlite (Debian: r-cran-lme4 r-cran-lmertest
# r-cran-nlme r-cran-optimx r-cran-dfoptim r-cran-jsonlite). Package versions are under "provenance".
#
# Contents:
#   ranova     lmerTest::ranova(m) (reduce.terms = TRUE, and FALSE where marked): row names, npar, logLik,
#              AIC, LRT, Df, p-value and the reduced models' formulas
#   step       lmerTest::step(m, ddf): the random and fixed backward-elimination tables and the model found
#   allfit     summary(lme4::allFit(m)): each optimizer's log-likelihood, fixed effects, theta and SD/correlations
#   criteria   logLik, its df, nobs, AIC, BIC and AICc = AIC + 2k(k + 1)/(n - k - 1) (MuMIn's, from logLik's df k
#              and nobs n) of candidate models, by REML and ML; isSingular; a random intercept with a
#              continuous-time AR(1) residual (nlme::lme with corCAR1) among them

suppressMessages({
  library(lme4)
  library(lmerTest)
  library(nlme)
  library(jsonlite)
})

deparse2 <- function(x) paste(trimws(deparse(x, width.cutoff = 500L)), collapse = " ")
num <- function(x) { x <- unname(as.numeric(x)); x[!is.finite(x)] <- NA; x }

ham2 <- lmerTest::ham
ham2$Consumer <- factor(paste0("c", ham2$Consumer))
ham2$Product <- factor(paste0("p", ham2$Product))
ham2$Information <- factor(paste0("i", ham2$Information))
ham2$Gender <- factor(paste0("g", ham2$Gender))
ham2 <- ham2[, c("Consumer", "Product", "Information", "Gender", "Informed.liking")]
write.csv(ham2, "tests/reference/data/ham.csv", row.names = FALSE)
ss <- lme4::sleepstudy
cake <- lme4::cake
data_of <- list(sleepstudy = ss, cake = cake, Pastes = lme4::Pastes, Dyestuff = lme4::Dyestuff,
                Penicillin = lme4::Penicillin, ham = ham2)
for (nm in names(data_of)) assign(nm, data_of[[nm]], envir = globalenv())

# the call names the data set, so that step()'s and allFit()'s update() find it
fit <- function(dataset, formula, REML = TRUE)
  suppressMessages(suppressWarnings(eval(substitute(lmerTest::lmer(F, data = D, REML = R),
                                                    list(F = as.formula(formula), D = as.name(dataset), R = REML)),
                                         envir = globalenv())))

# ----------------------------------------------------------------------------------------------- ranova
ranova_case <- function(dataset, formula, REML = TRUE, reduce = TRUE) {
  r <- suppressMessages(ranova(fit(dataset, formula, REML), reduce.terms = reduce))
  list(dataset = dataset, formula = formula, REML = REML, reduce_terms = reduce, rows = I(rownames(r)),
       npar = I(num(r$npar)), logLik = I(num(r$logLik)), AIC = I(num(r$AIC)), LRT = I(num(r$LRT)), Df = I(num(r$Df)),
       p_value = I(num(r[["Pr(>Chisq)"]])), formulae = I(unname(vapply(attr(r, "formulae"), deparse2, ""))))
}
ranova_cases <- list(
  sleep_slope = ranova_case("sleepstudy", "Reaction ~ Days + (Days | Subject)"),
  sleep_slope_remove = ranova_case("sleepstudy", "Reaction ~ Days + (Days | Subject)", reduce = FALSE),
  sleep_slope_ml = ranova_case("sleepstudy", "Reaction ~ Days + (Days | Subject)", REML = FALSE),
  sleep_uncorrelated = ranova_case("sleepstudy", "Reaction ~ Days + (Days || Subject)"),
  dyestuff = ranova_case("Dyestuff", "Yield ~ 1 + (1 | Batch)"),
  pastes = ranova_case("Pastes", "strength ~ 1 + (1 | batch) + (1 | batch:cask)"),
  cake = ranova_case("cake", "angle ~ recipe * temp + (1 | recipe:replicate) + (1 | replicate)")
)

# ------------------------------------------------------------------------------------------------- step
table_of <- function(t) {
  out <- list(rows = I(rownames(t)))
  for (col in colnames(t)) out[[col]] <- I(num(t[[col]]))
  out
}
step_case <- function(dataset, formula, ddf = "Satterthwaite", ...) {
  st <- suppressMessages(suppressWarnings(step(fit(dataset, formula), ddf = ddf, ...)))
  list(dataset = dataset, formula = formula, ddf = ddf, args = list(...), random = table_of(st$random),
       fixed = table_of(st$fixed), model = deparse2(formula(get_model(st))))
}
step_cases <- list(
  sleep = step_case("sleepstudy", "Reaction ~ Days + (Days | Subject)"),
  cake = step_case("cake", "angle ~ recipe * temp + (1 | recipe:replicate) + (1 | replicate)"),
  cake_kr = step_case("cake", "angle ~ recipe * temp + (1 | recipe:replicate) + (1 | replicate)", ddf = "Kenward-Roger"),
  ham = step_case("ham", "Informed.liking ~ Product * Information * Gender + (1 | Consumer) + (1 | Product:Consumer)"),
  ham_alpha = step_case("ham", "Informed.liking ~ Product * Information * Gender + (1 | Consumer) + (1 | Product:Consumer)",
                        alpha.random = 0.05, alpha.fixed = 0.1, keep = "Gender")
)

# ----------------------------------------------------------------------------------------------- allFit
allfit_case <- function(dataset, formula, REML = TRUE) {
  af <- suppressMessages(suppressWarnings(allFit(fit(dataset, formula, REML), verbose = FALSE)))
  s <- summary(af)
  mat <- function(m) list(rows = I(rownames(m)), columns = I(colnames(m)),
                         values = unname(lapply(seq_len(nrow(m)), function(i) I(num(m[i, ])))))
  list(dataset = dataset, formula = formula, REML = REML, optimizers = I(names(s$llik)), ok = I(unname(s$which.OK)),
       loglik = I(num(s$llik)), fixef = mat(s$fixef), theta = mat(s$theta), sdcor = mat(s$sdcor),
       messages = unname(lapply(s$msgs, function(m) I(if (is.null(m)) character(0) else as.character(m)))))
}
allfit_cases <- list(
  sleep = allfit_case("sleepstudy", "Reaction ~ Days + (Days | Subject)"),
  penicillin = allfit_case("Penicillin", "diameter ~ 1 + (1 | plate) + (1 | sample)"),
  cake_ml = allfit_case("cake", "angle ~ recipe * temp + (1 | recipe:replicate) + (1 | replicate)", REML = FALSE)
)

# --------------------------------------------------------------------------------------------- criteria
crit <- function(m) {
  ll <- logLik(m)
  k <- attr(ll, "df")
  n <- nobs(m)
  aic <- -2 * as.numeric(ll) + 2 * k
  list(logLik = as.numeric(ll), df = k, nobs = n, AIC = aic, BIC = -2 * as.numeric(ll) + k * log(n),
       AICc = aic + 2 * k * (k + 1) / (n - k - 1),
       singular = if (inherits(m, "merMod")) isSingular(m) else FALSE)
}
candidates <- c(
  none = "Reaction ~ Days",
  intercept = "Reaction ~ Days + (1 | Subject)",
  slope = "Reaction ~ Days + (Days | Subject)",
  uncorrelated = "Reaction ~ Days + (Days || Subject)",
  slope_only = "Reaction ~ Days + (0 + Days | Subject)"
)
criteria <- list()
for (method in c("REML", "ML")) {
  reml <- method == "REML"
  rows <- lapply(names(candidates), function(nm) {
    f <- candidates[[nm]]
    m <- if (nm == "none") lm(as.formula(f), ss) else fit("sleepstudy", f, reml)
    out <- crit(m)
    if (nm == "none") { ll <- logLik(m, REML = reml); k <- attr(ll, "df"); n <- nobs(m)
      out$logLik <- as.numeric(ll); out$df <- k; out$AIC <- -2 * out$logLik + 2 * k
      out$BIC <- -2 * out$logLik + k * log(n); out$AICc <- out$AIC + 2 * k * (k + 1) / (n - k - 1) }
    c(list(name = nm, formula = f), out)
  })
  m_car1 <- lme(Reaction ~ Days, data = ss, random = ~ 1 | Subject, correlation = corCAR1(form = ~ Days | Subject),
                method = method, control = lmeControl(tolerance = 1e-10, msMaxIter = 500, maxIter = 500, msMaxEval = 5000))
  rows[[length(rows) + 1]] <- c(list(name = "intercept_car1", formula = "Reaction ~ Days + (1 | Subject)",
                                     residual = "car1(Days | Subject)"), crit(m_car1))
  criteria[[method]] <- rows
}
# fixed effects that differ: compared by ML
fixed_differ <- lapply(c("Reaction ~ 1 + (Days | Subject)", "Reaction ~ Days + (Days | Subject)",
                         "Reaction ~ Days + I(Days^2) + (Days | Subject)"),
                       function(f) c(list(formula = f), crit(fit("sleepstudy", f, FALSE))))

provenance <- list(script = "tests/reference/select.R", R = R.version.string,
                   lme4 = as.character(packageVersion("lme4")), lmerTest = as.character(packageVersion("lmerTest")),
                   nlme = as.character(packageVersion("nlme")), optimx = as.character(packageVersion("optimx")),
                   dfoptim = as.character(packageVersion("dfoptim")), generated = format(Sys.time(), "%Y-%m-%d"))
writeLines(toJSON(list(provenance = provenance, ranova = ranova_cases, step = step_cases, allfit = allfit_cases,
                       criteria = criteria, criteria_fixed_differ = fixed_differ),
                  digits = NA, auto_unbox = TRUE, pretty = TRUE, null = "null", na = "null"),
           "tests/reference/select.json")
