# Reference results for GLMM inference (tests/glmm/test_glmm_inference.py): emmeans on the link and
# response scales and population-averaged (marginal) means by numerical integration, for glmer fits.
#
# Regenerate (from the repository root):
#     Rscript tests/reference/glmm_inference.R
# which writes tests/reference/glmm_inference.json. Needs lme4, emmeans and jsonlite (versions under
# "provenance"). Fits use tight glmer controls (the exact Laplace optimum, as tests/reference/glmer.R's
# "tight"), so the estimates are those of mixedmodels to ~1e-7.
#
# Models: cbpp's period + (1 | herd) (logit, and probit), and a Poisson fit of glmm_nb.csv (y ~ x + f + (1 | g)).
# "marginal": for each period of cbpp, the population-averaged probability
#     integral of plogis(eta + b) dnorm(b, 0, sigma) db
# by R's integrate() (rel.tol 1e-12) at the fit's estimates, and the marginal odds ratios between periods.

suppressMessages({
  library(lme4)
  library(emmeans)
  library(jsonlite)
})
emm_options(opt.digits = FALSE)
tight <- glmerControl(tolPwrss = 1e-12, optimizer = "nloptwrap",
                      optCtrl = list(xtol_abs = 1e-10, ftol_abs = 1e-13, xtol_rel = 0, ftol_rel = 0, maxeval = 1e5))

m <- glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), cbpp, family = binomial, control = tight)
link <- as.data.frame(emmeans(m, ~ period))
resp <- as.data.frame(emmeans(m, ~ period, type = "response"))
pl <- as.data.frame(pairs(emmeans(m, ~ period)))
pr <- as.data.frame(pairs(emmeans(m, ~ period), type = "response"))
ci <- as.data.frame(confint(pairs(emmeans(m, ~ period), type = "response")))

sigma <- sqrt(VarCorr(m)$herd[1, 1])
eta <- link$emmean
marg <- sapply(eta, function(e) integrate(function(b) plogis(e + b) * dnorm(b, 0, sigma), -Inf, Inf,
                                          rel.tol = 1e-12)$value)
odds <- marg / (1 - marg)
pairs_idx <- combn(length(marg), 2)

ctrl <- as.data.frame(confint(contrast(emmeans(m, ~ period), "trt.vs.ctrl"), type = "response"))
ctrl_p <- as.data.frame(contrast(emmeans(m, ~ period), "trt.vs.ctrl", type = "response"))

# Poisson log link with a covariate (at its mean in the reference grid): rates and rate ratios
nb <- read.csv("tests/reference/data/glmm_nb.csv")
mp <- glmer(y ~ x + f + (1 | g), nb, family = poisson, control = tight)
# glmmTMB's SEs come from its exact (automatic-differentiation) Hessian; glmer's finite-difference one
# is ~1e-3 off for this fit, so SEs are checked against glmmTMB (df = Inf: z intervals as for glmer)
mt <- glmmTMB::glmmTMB(y ~ x + f + (1 | g), nb, family = poisson)
pois <- list(
  beta = unname(fixef(mp)),
  tmb_emmeans_response = as.data.frame(emmeans(mt, ~ f, type = "response", df = Inf)),
  tmb_pairs_response = as.data.frame(pairs(emmeans(mt, ~ f, df = Inf), type = "response")),
  emmeans_response = as.data.frame(emmeans(mp, ~ f, type = "response")),
  pairs_response = as.data.frame(pairs(emmeans(mp, ~ f), type = "response")),
  pairs_response_ci = as.data.frame(confint(pairs(emmeans(mp, ~ f), type = "response")))
)

# probit: response-scale means; contrasts stay on the probit scale
mb <- glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), cbpp, family = binomial("probit"), control = tight)
probit <- list(
  beta = unname(fixef(mb)),
  emmeans_response = as.data.frame(emmeans(mb, ~ period, type = "response")),
  pairs_response = as.data.frame(pairs(emmeans(mb, ~ period), type = "response"))
)

# ICC and Nakagawa's R2 on the latent scale (performance 0.10, insight 0.19): cbpp logit and probit,
# cbpp with an observation-level term (its variance is insight's dispersion), Poisson with a random slope
# and an offset (insight refits the null model y ~ 1 + offset + (1 + x | g) by glmer's defaults)
latent <- function(model, formula, data, family, link) {
  v <- suppressWarnings(insight::get_variance(model))
  list(formula = formula, data = data, family = family, link = link,
       icc = as.list(suppressWarnings(performance::icc(model))),
       r2 = lapply(suppressWarnings(performance::r2_nakagawa(model)), unname),
       var_fixed = v$var.fixed, var_random = v$var.random, var_distribution = v$var.distribution,
       var_dispersion = v$var.dispersion)
}
cbpp$obs <- factor(seq_len(nrow(cbpp)))
mo <- glmer(cbind(incidence, size - incidence) ~ period + (1 | herd) + (1 | obs), cbpp, family = binomial, control = tight)
pdat <- read.csv("tests/reference/data/glmm_poisson.csv")
ms <- glmer(y ~ x + offset(log(exposure)) + (1 + x | g), pdat, family = poisson, control = tight)
lat <- list(
  cbpp_logit = latent(m, "cbind(incidence, size - incidence) ~ period + (1 | herd)", "cbpp", "binomial", "logit"),
  cbpp_probit = latent(mb, "cbind(incidence, size - incidence) ~ period + (1 | herd)", "cbpp", "binomial", "probit"),
  cbpp_obs = latent(mo, "cbind(incidence, size - incidence) ~ period + (1 | herd) + (1 | obs)", "cbpp_obs", "binomial", "logit"),
  poisson = latent(mp, "y ~ x + f + (1 | g)", "glmm_nb.csv", "poisson", "log"),
  poisson_slope = latent(ms, "y ~ x + offset(log(exposure)) + (1 + x | g)", "glmm_poisson.csv", "poisson", "log")
)
msing <- glmer(y ~ x + (1 | g), read.csv("tests/reference/data/glmm_singular.csv"), family = binomial, control = tight)
vsing <- suppressWarnings(insight::get_variance(msing))
singular <- list(formula = "y ~ x + (1 | g)", data = "glmm_singular.csv", is_singular = isSingular(msing),
                 icc_is_null = is.null(suppressWarnings(performance::icc(msing))),
                 r2 = lapply(suppressWarnings(performance::r2_nakagawa(msing)), unname),
                 var_fixed = vsing$var.fixed, var_distribution = vsing$var.distribution)
# binned residuals (performance's binned_residuals) of a binary fit, by fitted value and by x
binned <- list(formula = "y ~ x + (1 | g)", data = "glmm_singular.csv",
               fitted = as.data.frame(performance::binned_residuals(msing))[, 1:10],
               by_x = as.data.frame(performance::binned_residuals(msing, term = "x", n_bins = 8))[, 1:10],
               resid_ok = attr(performance::binned_residuals(msing), "resid_ok"))

out <- list(
  provenance = list(R = R.version.string, lme4 = as.character(packageVersion("lme4")),
                    emmeans = as.character(packageVersion("emmeans")),
                    performance = as.character(packageVersion("performance")),
                    insight = as.character(packageVersion("insight"))),
  cbpp = list(
    beta = unname(fixef(m)), theta = unname(getME(m, "theta")),
    emmeans_link = link, emmeans_response = resp, pairs_link = pl, pairs_response = pr,
    pairs_response_ci = ci, trt_vs_ctrl_response_ci = ctrl, trt_vs_ctrl_response = ctrl_p,
    marginal = list(period = levels(cbpp$period), prob = marg,
                    odds_ratio = odds[pairs_idx[1, ]] / odds[pairs_idx[2, ]],
                    contrast = paste(levels(cbpp$period)[pairs_idx[1, ]], "/", levels(cbpp$period)[pairs_idx[2, ]]))
  ),
  poisson = pois,
  probit = probit,
  latent = lat,
  latent_singular = singular,
  binned = binned
)
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE, na = "null"), "tests/reference/glmm_inference.json")
