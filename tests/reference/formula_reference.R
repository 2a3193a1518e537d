# Reference values for formula syntax, column types and coefficient names,
# used by tests/formula/test_issue9_formula.py.
#
# Regenerate (from the repository root):
#     Rscript tests/reference/formula_reference.R
# which writes tests/reference/formula_reference.json and the data files
# tests/reference/data/formula_nlschools.csv and tests/reference/data/formula_co2.csv.
#
# Needs R with lme4, MASS and jsonlite
# (Debian/Ubuntu: apt-get install r-cran-lme4 r-cran-mass r-cran-jsonlite).
# Package versions are recorded in the JSON under "provenance".
#
# Data (written here, then read back from the CSV so that R and the tests fit the same numbers
# with the same, alphabetical, factor levels):
#   formula_nlschools.csv  MASS::nlschools: lang, IQ (numeric), SES (integer), COMB (0/1), class
#   formula_co2.csv        datasets::CO2: Plant, Type, Treatment, conc, uptake, and chilled
#                          (logical, Treatment == "chilled")
#   cake                   lme4::cake, as bundled in src/mixedmodels/datasets/data/cake.csv,
#                          with tc = (temp - 200) / 10
#
# Contents ("models": one entry per fit, REML unless "reml" is false):
#   formula, data, reml, fixef (names, values), theta (names, values), sigma, objective
#   (REML criterion or deviance), varcorr (grp, var1 of as.data.frame(VarCorr(m)), variance
#   rows only), ngrps. Columns renamed before the fit are listed under "rename" (old -> new), and
#   rows changed under "edit".
#   "errors": R's message for predict() with a level of a fixed-effect factor not seen in fitting
#   (lme4 1.1-31 stops, if with a cryptic message).
#   "constant_response": what lme4 returns for a constant response (REML criterion -Inf).

suppressMessages({
  library(lme4)
  library(MASS)
  library(jsonlite)
})

out_path <- "tests/reference/formula_reference.json"
data_dir <- "tests/reference/data"

nls <- MASS::nlschools[, c("lang", "IQ", "SES", "COMB", "class")]
nls$COMB <- as.integer(as.character(nls$COMB))
write.csv(nls, file.path(data_dir, "formula_nlschools.csv"), row.names = FALSE)
co2 <- as.data.frame(datasets::CO2)[, c("Plant", "Type", "Treatment", "conc", "uptake")]
for (v in c("Plant", "Type", "Treatment")) co2[[v]] <- as.character(co2[[v]])
co2$chilled <- co2$Treatment == "chilled"
write.csv(co2, file.path(data_dir, "formula_co2.csv"), row.names = FALSE)

data_sets <- list(
  nlschools = read.csv(file.path(data_dir, "formula_nlschools.csv"), stringsAsFactors = TRUE),
  co2 = read.csv(file.path(data_dir, "formula_co2.csv"), stringsAsFactors = TRUE),
  cake = read.csv("src/mixedmodels/datasets/data/cake.csv", stringsAsFactors = TRUE)
)
data_sets$nlschools$class <- factor(data_sets$nlschools$class)
data_sets$cake$replicate <- factor(data_sets$cake$replicate)
data_sets$cake$tc <- (data_sets$cake$temp - 200) / 10  # centred and scaled so that lme4 converges

describe <- function(m) {
  vc <- as.data.frame(VarCorr(m))
  vc <- vc[is.na(vc$var2), ]
  list(  # I(): vectors stay JSON arrays even of length 1
    fixef = list(names = I(names(fixef(m))), values = I(unname(fixef(m)))),
    theta = list(names = I(names(getME(m, "theta"))), values = I(unname(getME(m, "theta")))),
    sigma = sigma(m),
    objective = if (isREML(m)) REMLcrit(m) else deviance(m),
    varcorr = list(grp = I(vc$grp), var1 = I(ifelse(is.na(vc$var1), "", vc$var1))),
    ngrps = as.list(ngrps(m))
  )
}

fit <- function(formula, data, reml = TRUE, rename = NULL, edit = NULL, contrasts = NULL) {
  d <- data_sets[[data]]
  if (!is.null(edit)) d <- edit(d)
  if (!is.null(rename)) for (old in names(rename)) names(d)[names(d) == old] <- rename[[old]]
  m <- lmer(as.formula(formula), d, REML = reml, contrasts = contrasts,
            control = lmerControl(check.conv.singular = "ignore"))
  c(list(formula = formula, data = data, reml = reml, rename = rename,
         contrasts = if (is.null(contrasts)) NULL else lapply(contrasts, identity)), describe(m))
}

models <- list(
  # 1. ^ is a power inside I() and other functions; %% %/% unary minus, / and * keep R's meaning
  power = fit("lang ~ IQ + I(IQ^2) + SES + I(SES^2) + (1 | class)", "nlschools"),
  operators = fit("lang ~ I(SES %/% 10) + I(SES %% 3) + I(IQ/2 - 1) + I(-SES^2/100) + log(IQ^2) + I(IQ > 12) + (1 | class)", "nlschools"),
  crossing = fit("lang ~ (IQ + SES + factor(COMB))^2 + (1 | class)", "nlschools"),
  # 5. names: poly, raw poly, no intercept
  poly = fit("lang ~ poly(IQ, 2) + poly(SES, 2, raw = TRUE) + (1 | class)", "nlschools"),
  no_intercept = fit("uptake ~ 0 + Type + Treatment + log(conc) + (1 | Plant)", "co2"),
  # 2. factors of any dtype, logical predictor
  factors = fit("uptake ~ Type + Treatment + log(conc) + (1 | Plant)", "co2"),
  logical = fit("uptake ~ Type + chilled + log(conc) + (1 | Plant)", "co2"),
  # 4. names with spaces and non-ASCII letters, as predictors, response and grouping factor
  odd_names = fit("`CO2 Aufnahme` ~ `Behandlung Art` + log(`Größe`) + (1 | `Gruppe ID`)", "co2",
                  rename = list(uptake = "CO2 Aufnahme", Treatment = "Behandlung Art", conc = "Größe", Plant = "Gruppe ID")),
  # 5. lme4's order of terms: equal numbers of levels in reverse when the terms are reordered
  order_split = fit("angle ~ tc + (1 | replicate) + (0 + tc | replicate) + (1 | recipe:replicate)", "cake"),
  order_double_bar = fit("angle ~ tc + (tc || replicate) + (1 | recipe:replicate)", "cake"),
  order_kept = fit("angle ~ tc + (1 | recipe:replicate) + (1 | replicate) + (0 + tc | replicate)", "cake"),
  # 7. "" is a level of a grouping factor
  empty_level = fit("uptake ~ Type + log(conc) + (1 | Plant)", "co2",
                    edit = function(d) { d$Plant <- as.character(d$Plant); d$Plant[d$Plant == "Qn1"] <- ""; d$Plant <- factor(d$Plant); d }),
  # 8. factor(), y ~ ., sum contrasts
  factor_call = fit("uptake ~ factor(conc) + Type + (1 | Plant)", "co2"),
  dot = fit("uptake ~ . + (1 | Plant)", "co2", edit = function(d) d[, c("uptake", "conc", "Treatment", "Plant")]),
  sum_contrasts = fit("uptake ~ Type * Treatment + log(conc) + (1 | Plant)", "co2",
                      contrasts = list(Type = "contr.sum", Treatment = "contr.sum")),
  sum_in_formula = fit("uptake ~ C(Type, sum) * C(Treatment, contr.sum) + log(conc) + (1 | Plant)", "co2")
)
models$empty_level$edit <- "Plant 'Qn1' replaced by ''"
models$dot$edit <- "columns uptake, conc, Treatment, Plant only"

m <- lmer(uptake ~ Type + log(conc) + (1 | Plant), data_sets$co2)
new_level <- tryCatch(
  predict(m, newdata = data.frame(Type = c("Quebec", "Alaska"), conc = 500, Plant = "Qn1")),
  error = function(e) conditionMessage(e)
)

set.seed(1)
const <- data.frame(y = 5, x = rnorm(40), g = rep(letters[1:8], 5))
mc <- suppressWarnings(lmer(y ~ x + (1 | g), const))
constant <- list(
  formula = "y ~ x + (1 | g)", description = "y = 5 for all 40 rows, x ~ N(0, 1), g: 8 levels",
  REMLcrit = as.character(REMLcrit(mc)), sigma = sigma(mc), theta = unname(getME(mc, "theta")),
  fixef = unname(fixef(mc)), warnings = "unable to evaluate scaled gradient; Problem with Hessian check"
)

out <- list(
  provenance = list(
    R = R.version.string,
    lme4 = as.character(packageVersion("lme4")),
    MASS = as.character(packageVersion("MASS")),
    jsonlite = as.character(packageVersion("jsonlite")),
    script = "tests/reference/formula_reference.R",
    date = as.character(Sys.Date())
  ),
  models = models,
  errors = list(predict_new_level = new_level),
  constant_response = constant
)
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE, null = "null"), out_path, useBytes = TRUE)
cat("wrote", out_path, "\n")
