# Reference values for the results accessors, printed summaries and model comparison,
# used by tests/test_accessors.py, tests/test_compare_output.py and tests/test_report.py.
#
# Regenerate (from the repository root):
#     Rscript tests/reference/results_reference.R
# which writes tests/reference/results_reference.json.
#
# Needs R with lme4, lmerTest and jsonlite
# (Debian/Ubuntu: apt-get install r-cran-lme4 r-cran-lmertest r-cran-jsonlite).
# Package versions are recorded in the JSON under "provenance".
#
# Contents:
#   accessors   sleepstudy, Reaction ~ Days + (Days | Subject), REML: fixef, standard errors,
#               t values, lmerTest's Satterthwaite p-values, Wald intervals (confint(m, "Wald")
#               at 95% and 90%), logLik, vcov, fitted, residuals and ranef
#   coef        lme4's coef(m) (fixed plus random effects per level) for three models, one with
#               a random slope that is not a fixed effect and one with nested factors
#   na_action   fitted() and residuals() with na.exclude (padded with NA) and na.omit, on
#               sleepstudy with Reaction missing in rows 3, 50, 120 and Days in row 7 (1-based)
#   integer_ids ranef(m) and coef(m) with an integer grouping column (Subject ids 5, 10, ..., 90)
#   summaries   print(summary(m)) of lme4 fits (lmerMod, no df) as lines, for sleepstudy with
#               Reaction scaled by 1, 1e-12 and 1e12 (REML and ML), and for Dyestuff, Dyestuff2,
#               Penicillin, Pastes
#   compare     anova(m0, m1): row names (the argument expressions), Df, and whether the
#               "refitting model(s) with ML" message appears, for ML fits and for REML fits
#   format      format(x, digits = d) of a few vectors (R's formatReal: fixed or scientific)
#   coefmat     printCoefmat(cbind(Estimate, Std. Error, t value), digits = 4) as lines
# Data: lme4's built-in data sets. Vectors that are arrays stay JSON arrays even of length 1 (I()).

suppressMessages({
  library(lme4)
  library(lmerTest)
  library(jsonlite)
})

out_path <- "tests/reference/results_reference.json"
ss <- sleepstudy

# ---- accessors -----------------------------------------------------------------------------
m <- lmerTest::lmer(Reaction ~ Days + (Days | Subject), ss)
ct <- coef(summary(m, ddf = "Satterthwaite"))
wald <- function(level) {
  ci <- confint(m, method = "Wald", parm = "beta_", level = level)
  list(lower = unname(ci[, 1]), upper = unname(ci[, 2]))
}
accessors <- list(
  formula = "Reaction ~ Days + (Days | Subject)",
  terms = rownames(ct),
  params = unname(fixef(m)),
  bse = unname(ct[, "Std. Error"]),
  tvalues = unname(ct[, "t value"]),
  pvalues = unname(ct[, "Pr(>|t|)"]),
  df = unname(ct[, "df"]),
  conf_int_95 = wald(0.95),
  conf_int_90 = wald(0.90),
  llf = as.numeric(logLik(m)),
  vcov = unname(lapply(seq_len(nrow(vcov(m))), function(i) as.numeric(as.matrix(vcov(m))[i, ]))),
  fitted = unname(fitted(m)),
  resid = unname(residuals(m)),
  ranef = list(levels = rownames(ranef(m)$Subject), columns = colnames(ranef(m)$Subject),
               values = unname(lapply(seq_len(nrow(ranef(m)$Subject)), function(i) as.numeric(ranef(m)$Subject[i, ]))))
)

# ---- coef ----------------------------------------------------------------------------------
coef_entry <- function(fit) {
  cf <- coef(fit)
  lapply(cf, function(x) list(levels = rownames(x), columns = I(colnames(x)),
                              values = unname(lapply(seq_len(nrow(x)), function(i) I(as.numeric(x[i, ]))))))
}
coef_models <- list(
  sleepstudy = list(data = "sleepstudy", formula = "Reaction ~ Days + (Days | Subject)"),
  random_slope_only = list(data = "sleepstudy", formula = "Reaction ~ 1 + (Days | Subject)"),
  pastes = list(data = "Pastes", formula = "strength ~ 1 + (1 | batch/cask)")
)
coef_out <- lapply(coef_models, function(spec) {
  fit <- lme4::lmer(as.formula(spec$formula), get(spec$data))
  c(spec, list(coef = coef_entry(fit)))
})

# ---- na_action -----------------------------------------------------------------------------
ss_na <- ss
ss_na$Reaction[c(3, 50, 120)] <- NA
ss_na$Days[7] <- NA
m_ex <- lme4::lmer(Reaction ~ Days + (Days | Subject), ss_na, na.action = na.exclude)
m_om <- lme4::lmer(Reaction ~ Days + (Days | Subject), ss_na, na.action = na.omit)
na_out <- list(
  formula = "Reaction ~ Days + (Days | Subject)",
  missing_reaction = c(3, 50, 120), missing_days = I(7),
  exclude = list(fitted = unname(fitted(m_ex)), resid = unname(residuals(m_ex))),
  omit = list(rows = as.integer(names(fitted(m_om))), fitted = unname(fitted(m_om)), resid = unname(residuals(m_om)))
)

# ---- integer ids ---------------------------------------------------------------------------
ss_int <- ss
ss_int$Subject <- as.integer(ss$Subject) * 5L
m_int <- lme4::lmer(Reaction ~ Days + (Days | Subject), ss_int)
re_int <- ranef(m_int)$Subject
int_out <- list(
  formula = "Reaction ~ Days + (Days | Subject)", ids = "Subject = 5 * (position of the subject's level)",
  levels = as.integer(rownames(re_int)), columns = colnames(re_int),
  ranef = unname(lapply(seq_len(nrow(re_int)), function(i) as.numeric(re_int[i, ]))),
  coef = coef_entry(m_int)$Subject
)

# ---- printed summaries (lme4's lmerMod print) ------------------------------------------------
summary_lines <- function(formula, data, REML) {
  fit <- lme4::lmer(as.formula(formula), data, REML = REML)
  capture.output(print(summary(fit)))
}
scaled <- function(s) { d <- ss; d$Reaction <- d$Reaction * s; d }
summaries <- list(
  sleepstudy = list(data = "sleepstudy", scale = 1, formula = "Reaction ~ Days + (Days | Subject)", REML = TRUE),
  sleepstudy_ml = list(data = "sleepstudy", scale = 1, formula = "Reaction ~ Days + (Days | Subject)", REML = FALSE),
  sleepstudy_1e_12 = list(data = "sleepstudy", scale = 1e-12, formula = "Reaction ~ Days + (Days | Subject)", REML = TRUE),
  sleepstudy_1e12 = list(data = "sleepstudy", scale = 1e12, formula = "Reaction ~ Days + (Days | Subject)", REML = TRUE),
  sleepstudy_1e12_ml = list(data = "sleepstudy", scale = 1e12, formula = "Reaction ~ Days + (Days | Subject)", REML = FALSE),
  dyestuff = list(data = "Dyestuff", scale = 1, formula = "Yield ~ 1 + (1 | Batch)", REML = TRUE),
  dyestuff2 = list(data = "Dyestuff2", scale = 1, formula = "Yield ~ 1 + (1 | Batch)", REML = TRUE),
  penicillin = list(data = "Penicillin", scale = 1, formula = "diameter ~ 1 + (1 | plate) + (1 | sample)", REML = TRUE),
  pastes = list(data = "Pastes", scale = 1, formula = "strength ~ 1 + (1 | batch/cask)", REML = TRUE)
)
summary_out <- lapply(summaries, function(spec) {
  data <- if (spec$data == "sleepstudy") scaled(spec$scale) else get(spec$data)
  c(spec, list(lines = suppressMessages(summary_lines(spec$formula, data, spec$REML))))
})

# ---- compare (anova) -------------------------------------------------------------------------
refit_message <- function(expr) {
  msgs <- character(0)
  val <- withCallingHandlers(expr, message = function(c) {
    msgs <<- c(msgs, conditionMessage(c))
    invokeRestart("muffleMessage")
  })
  list(rownames = rownames(val), df = as.integer(val$Df), messages = I(trimws(msgs)))
}
m0 <- lme4::lmer(Reaction ~ Days + (1 | Subject), ss, REML = FALSE)
m1 <- lme4::lmer(Reaction ~ Days + (Days | Subject), ss, REML = FALSE)
r0 <- lme4::lmer(Reaction ~ Days + (1 | Subject), ss)
r1 <- lme4::lmer(Reaction ~ Days + (Days | Subject), ss)
compare_out <- list(
  formulas = c("Reaction ~ Days + (1 | Subject)", "Reaction ~ Days + (Days | Subject)"),
  ml_fits = refit_message(anova(m0, m1)),
  reml_fits = refit_message(anova(r0, r1))
)

# ---- R's format(x, digits =) and printCoefmat on their own -----------------------------------
format_cases <- list(
  list(x = c(612.0989, 35.07172, 654.941), digits = 4),
  list(x = c(0.10599, 0.265160, 0.006165, 1.386480), digits = 4),
  list(x = I(9996), digits = 3),
  list(x = c(1e-300, 1), digits = 4),
  list(x = c(123456789, 1), digits = 4),
  list(x = c(1e5, 1), digits = 4),
  list(x = c(6.121e-22, 3.507e-23, 0), digits = 4),
  list(x = c(6.121e26, 3.507e25), digits = 4),
  list(x = c(-1.5, 2, 1e-25), digits = 4),
  list(x = c(0.5, 0.25, -0.125), digits = 7),
  list(x = c(1e15, 1e-15), digits = 4)
)
format_out <- lapply(format_cases, function(case) list(x = case$x, digits = case$digits, text = I(format(case$x, digits = case$digits))))
coefmat_cases <- list(
  list(est = c(251.405105, 10.467286), se = c(6.824597, 1.545790), t = c(36.838090, 6.771481)),
  list(est = c(2.5e-10, -1e-16), se = c(6.8e-12, 1.5e-12), t = c(36.8, -6.7e-5)),
  list(est = c(1234567.891, 0.5), se = c(0.001234, 0.2), t = c(1.0005e9, 2.5))
)
coefmat_out <- lapply(coefmat_cases, function(case) {
  mat <- cbind(Estimate = case$est, `Std. Error` = case$se, `t value` = case$t)
  rownames(mat) <- paste0("b", seq_len(nrow(mat)))
  c(case, list(lines = capture.output(printCoefmat(mat, digits = 4))))
})

provenance <- list(
  script = "tests/reference/results_reference.R",
  R = R.version.string,
  lme4 = as.character(packageVersion("lme4")),
  lmerTest = as.character(packageVersion("lmerTest")),
  generated = format(Sys.time(), "%Y-%m-%d")
)

out <- list(provenance = provenance, accessors = accessors, coef = coef_out, na_action = na_out,
            integer_ids = int_out, summaries = summary_out, compare = compare_out,
            format = format_out, coefmat = coefmat_out)
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, null = "null", na = "null", pretty = TRUE), out_path)
cat("wrote", out_path, "\n")
