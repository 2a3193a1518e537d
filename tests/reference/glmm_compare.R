# Likelihood-ratio test between nested GLMMs (tests/glmm/test_glmm_compare.py): lme4's anova() of two
# cbpp fits, converged tightly as tests/reference/glmer.R's "tight" fits (glmer's default PIRLS
# tolerance leaves the deviance ~5e-4 from the exact Laplace value).
#
# Regenerate (from the repository root):
#     Rscript tests/reference/glmm_compare.R
# which writes tests/reference/glmm_compare.json. Needs R with lme4 and jsonlite. Versions under "provenance".

suppressMessages({
  library(lme4)
  library(jsonlite)
})
ctl <- glmerControl(tolPwrss = 1e-12, optimizer = "nloptwrap",
                    optCtrl = list(ftol_abs = 1e-12, xtol_abs = 1e-10, maxeval = 1e5))
g0 <- glmer(cbind(incidence, size - incidence) ~ 1 + (1 | herd), cbpp, binomial, control = ctl)
g1 <- glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), cbpp, binomial, control = ctl)
a <- anova(g0, g1)
out <- list(provenance = list(R = R.version.string, lme4 = as.character(packageVersion("lme4"))),
            npar = unname(a$npar), AIC = unname(a$AIC), BIC = unname(a$BIC), logLik = unname(a$logLik),
            chisq = unname(a$Chisq[2]), df = unname(a$Df[2]), p = unname(a$`Pr(>Chisq)`[2]))
write_json(out, "tests/reference/glmm_compare.json", digits = NA, auto_unbox = TRUE, pretty = TRUE)
