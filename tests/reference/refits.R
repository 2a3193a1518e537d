# Reference values for refits, profiles on singular fits and crossed designs with `||`
# (tests/test_refits_reference.py).
#
# Regenerate (from the repository root):
#     Rscript tests/reference/refits.R
# which writes tests/reference/refits.json and the data files tests/reference/data/{CO2,nlschools,fhch2010}.csv.
#
# Needs R with lme4, MASS, afex and jsonlite
# (Debian: apt-get install r-cran-lme4 r-cran-mass r-cran-afex r-cran-jsonlite).
# Package versions are recorded in the JSON under "provenance".
#
# Contents:
#   co2_compare    lme4's anova(m0, m) on datasets::CO2, which refits both REML fits by ML; the REML fit
#                  of m is singular (slope SD 0), the start its ML refit must not get stuck at
#   nlschools_ci   confint(m, method = "profile") on MASS::nlschools for ML fits whose slope variance is 0
#   fhch2010_fit   lmer on afex::fhch2010 with (1 | id) + (task || item): 45 ids crossed with 600 items

suppressMessages({
  library(lme4)
  library(MASS)
  library(afex)
  library(jsonlite)
})

co2 <- as.data.frame(CO2)
co2$Plant <- factor(as.character(co2$Plant))
write.csv(co2[, c("Plant", "Type", "Treatment", "conc", "uptake")], "tests/reference/data/CO2.csv", row.names = FALSE)
write.csv(nlschools[, c("lang", "IQ", "SES", "class")], "tests/reference/data/nlschools.csv", row.names = FALSE)
data(fhch2010, package = "afex")
fh <- fhch2010[, c("id", "task", "stimulus", "item", "log_rt")]
write.csv(fh, "tests/reference/data/fhch2010.csv", row.names = FALSE)

# Read back what the tests read, so both fit the same numbers (CSV rounding included).
co2 <- read.csv("tests/reference/data/CO2.csv", stringsAsFactors = TRUE)
nl <- read.csv("tests/reference/data/nlschools.csv")
nl$class <- factor(nl$class)
fh <- read.csv("tests/reference/data/fhch2010.csv")
fh$task <- factor(fh$task)
fh$id <- factor(fh$id)
fh$item <- factor(fh$item)

fit_info <- function(m) {
  list(loglik = as.numeric(logLik(m)), theta = unname(getME(m, "theta")), theta_names = names(getME(m, "theta")),
       beta = unname(fixef(m)), beta_names = names(fixef(m)), sigma = sigma(m))
}

m1 <- lmer(uptake ~ Type * Treatment + log(conc) + (log(conc) | Plant), co2)
m0 <- lmer(uptake ~ Type + Treatment + log(conc) + (log(conc) | Plant), co2)
a <- anova(m0, m1)
co2_compare <- list(
  formula0 = "uptake ~ Type + Treatment + log(conc) + (log(conc) | Plant)",
  formula1 = "uptake ~ Type * Treatment + log(conc) + (log(conc) | Plant)",
  reml_theta1 = unname(getME(m1, "theta")),
  loglik = a[["logLik"]], chisq = a[["Chisq"]][2], p_value = a[["Pr(>Chisq)"]][2],
  ml1 = fit_info(refitML(m1)), ml0 = fit_info(refitML(m0))
)

nl_ci <- list()
for (f in c("lang ~ IQ + (IQ || class)", "lang ~ IQ + SES + (IQ || class)")) {
  m <- lmer(as.formula(f), nl, REML = FALSE)
  ci <- confint(m, method = "profile", oldNames = TRUE)
  nl_ci[[length(nl_ci) + 1]] <- list(formula = f, fit = fit_info(m), parameter = rownames(ci),
                                     lower = unname(ci[, 1]), upper = unname(ci[, 2]))
}

fh_formula <- "log_rt ~ task + (1 | id) + (task || item)"
fh_fit <- c(list(formula = fh_formula), fit_info(lmer(as.formula(fh_formula), fh)))

out <- list(
  provenance = list(R = R.version.string, lme4 = as.character(packageVersion("lme4")),
                    MASS = as.character(packageVersion("MASS")), afex = as.character(packageVersion("afex"))),
  co2_compare = co2_compare, nlschools_ci = nl_ci, fhch2010_fit = fh_fit
)
write_json(out, "tests/reference/refits.json", digits = NA, auto_unbox = TRUE, pretty = TRUE)
