# Reference values for inference, used by tests/inference/test_*_reference.py.
#
# Regenerate (from the repository root):
#     Rscript tests/reference/inference.R
# which writes tests/reference/inference.json.
#
# Needs R with lme4, lmerTest, pbkrtest and jsonlite
# (Debian/Ubuntu: apt-get install r-cran-lme4 r-cran-lmertest r-cran-pbkrtest r-cran-jsonlite).
# Package versions are recorded in the JSON under "provenance".
#
# Contents:
#   coef      lmerTest's coef(summary(m, ddf = "Satterthwaite" / "Kenward-Roger"))
#   anova     lmerTest's anova(m, type = 3, ddf = ...)
#   contest   lmerTest's contest(m, L, ddf = ...) for given L
#   compare   lme4's anova(m0, m1, refit = ...) and logLik of a linear-model null
#   confint   lme4's confint(m, method = "profile") and (method = "Wald")
# Data: lme4's built-in data sets, and grouseticks read from the bundled CSV
# (src/mixedmodels/datasets/data/grouseticks.csv) with YEAR, BROOD, LOCATION as factors.

suppressMessages({
  library(lme4)
  library(lmerTest)
  library(pbkrtest)
  library(jsonlite)
})

out_path <- "tests/reference/inference.json"
grouse <- read.csv("src/mixedmodels/datasets/data/grouseticks.csv")
for (v in c("YEAR", "BROOD", "LOCATION", "INDEX")) grouse[[v]] <- factor(grouse[[v]])
data_sets <- list(sleepstudy = sleepstudy, Penicillin = Penicillin, cake = cake,
                  Dyestuff = Dyestuff, Dyestuff2 = Dyestuff2, Pastes = Pastes, grouseticks = grouse)

models <- list(
  sleepstudy       = list("sleepstudy", "Reaction ~ Days + (Days | Subject)", TRUE),
  sleepstudy_ml    = list("sleepstudy", "Reaction ~ Days + (Days | Subject)", FALSE),
  penicillin       = list("Penicillin", "diameter ~ 1 + (1 | plate) + (1 | sample)", TRUE),
  cake             = list("cake", "angle ~ recipe * temp + (1 | recipe:replicate)", TRUE),
  cake_factor      = list("cake", "angle ~ recipe * temperature + (1 | recipe:replicate)", TRUE),
  grouse           = list("grouseticks", "log1p(TICKS) ~ YEAR * HEIGHT + (1 | BROOD) + (1 | LOCATION)", TRUE),
  dyestuff         = list("Dyestuff", "Yield ~ 1 + (1 | Batch)", TRUE),
  dyestuff2        = list("Dyestuff2", "Yield ~ 1 + (1 | Batch)", TRUE),
  pastes           = list("Pastes", "strength ~ 1 + (1 | batch/cask)", TRUE)
)

fit <- function(spec) {
  lmerTest::lmer(as.formula(spec[[2]]), data = data_sets[[spec[[1]]]], REML = spec[[3]])
}
fits <- lapply(models, fit)

coef_tab <- function(m, ddf) {
  ct <- coef(summary(m, ddf = ddf))
  list(term = rownames(ct), estimate = unname(ct[, "Estimate"]), std_error = unname(ct[, "Std. Error"]),
       df = unname(ct[, "df"]), t_value = unname(ct[, "t value"]), p_value = unname(ct[, "Pr(>|t|)"]))
}
anova_tab <- function(m, ddf) {
  a <- anova(m, type = 3, ddf = ddf)
  list(term = rownames(a), sum_sq = a[["Sum Sq"]], mean_sq = a[["Mean Sq"]], num_df = a[["NumDF"]],
       den_df = a[["DenDF"]], f_value = a[["F value"]], p_value = a[["Pr(>F)"]])
}
ftab <- function(x) list(num_df = x[["NumDF"]], den_df = x[["DenDF"]], f_value = x[["F value"]], p_value = x[["Pr(>F)"]])

coef_out <- list()
for (key in names(fits)) {
  m <- fits[[key]]
  entry <- list(model = models[[key]][[1]], formula = models[[key]][[2]], REML = models[[key]][[3]],
                satterthwaite = coef_tab(m, "Satterthwaite"))
  if (models[[key]][[3]]) entry$kenward_roger <- coef_tab(m, "Kenward-Roger")
  coef_out[[key]] <- entry
}

anova_out <- list()
for (key in c("cake", "cake_factor", "grouse")) {
  anova_out[[key]] <- list(model = models[[key]][[1]], formula = models[[key]][[2]],
                           satterthwaite = anova_tab(fits[[key]], "Satterthwaite"),
                           kenward_roger = anova_tab(fits[[key]], "Kenward-Roger"))
}

L_grouse <- rbind(c(0, 1, -1, 0, 0, 0), c(0, 0, 0, 0, 1, 1))
L_sleep <- matrix(c(1, 5), nrow = 1)
contest_out <- list(
  grouse = list(L = L_grouse, satterthwaite = ftab(contest(fits$grouse, L_grouse, ddf = "Satterthwaite")),
                kenward_roger = ftab(contest(fits$grouse, L_grouse, ddf = "Kenward-Roger"))),
  sleepstudy = list(L = L_sleep, satterthwaite = ftab(contest(fits$sleepstudy, L_sleep, ddf = "Satterthwaite")),
                    kenward_roger = ftab(contest(fits$sleepstudy, L_sleep, ddf = "Kenward-Roger")))
)

anova_models <- function(a) {
  list(npar = a$npar, aic = a$AIC, bic = a$BIC, loglik = a$logLik, deviance = a$deviance,
       chisq = a$Chisq, df = a$Df, p_value = a[["Pr(>Chisq)"]])
}
ss <- sleepstudy
m_int <- lme4::lmer(Reaction ~ Days + (1 | Subject), ss)
m_slope <- lme4::lmer(Reaction ~ Days + (Days | Subject), ss)
m_nodays <- lme4::lmer(Reaction ~ 1 + (Days | Subject), ss)
m_uncorr <- lme4::lmer(Reaction ~ Days + (1 | Subject) + (0 + Days | Subject), ss)
lm_null <- lm(Reaction ~ Days, ss)
compare_out <- list(
  random_reml = c(list(formulas = c("Reaction ~ Days + (1 | Subject)", "Reaction ~ Days + (Days | Subject)"), refit = FALSE),
                  anova_models(anova(m_int, m_slope, refit = FALSE))),
  random_ml = c(list(formulas = c("Reaction ~ Days + (1 | Subject)", "Reaction ~ Days + (Days | Subject)"), refit = TRUE),
                anova_models(anova(m_int, m_slope))),
  fixed = c(list(formulas = c("Reaction ~ 1 + (Days | Subject)", "Reaction ~ Days + (Days | Subject)"), refit = TRUE),
            anova_models(anova(m_nodays, m_slope))),
  uncorrelated = c(list(formulas = c("Reaction ~ Days + (1 | Subject)", "Reaction ~ Days + (1 | Subject) + (0 + Days | Subject)"), refit = FALSE),
                   anova_models(anova(m_int, m_uncorr, refit = FALSE))),
  lm_null = list(formula = "Reaction ~ Days", loglik_reml = as.numeric(logLik(lm_null, REML = TRUE)),
                 loglik_ml = as.numeric(logLik(lm_null, REML = FALSE)))
)

ci_tab <- function(ci) list(parameter = rownames(ci), lower = unname(ci[, 1]), upper = unname(ci[, 2]))
confint_out <- list()
for (key in c("sleepstudy", "dyestuff", "dyestuff2", "penicillin", "pastes")) {
  m <- fits[[key]]
  confint_out[[key]] <- list(model = models[[key]][[1]], formula = models[[key]][[2]], REML = models[[key]][[3]],
                             profile = ci_tab(suppressWarnings(suppressMessages(confint(m, method = "profile", oldNames = TRUE)))),
                             wald = ci_tab(confint(m, method = "Wald", oldNames = TRUE)))
}

provenance <- list(
  script = "tests/reference/inference.R",
  R = R.version.string,
  lme4 = as.character(packageVersion("lme4")),
  lmerTest = as.character(packageVersion("lmerTest")),
  pbkrtest = as.character(packageVersion("pbkrtest")),
  generated = format(Sys.time(), "%Y-%m-%d")
)

out <- list(provenance = provenance, coef = coef_out, anova = anova_out, contest = contest_out,
            compare = compare_out, confint = confint_out)
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, null = "null", na = "null", pretty = TRUE), out_path)
cat("wrote", out_path, "\n")
