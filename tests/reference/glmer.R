# Reference GLMM fits from lme4's glmer (and glmmTMB, glmer.nb), used by tests/glmm/.
#
# Regenerate (from the repository root):
#     Rscript tests/reference/glmer.R
# which writes tests/reference/glmer.json and the simulated data sets tests/reference/data/glmm_*.csv
# (cbpp, VerbAgg and grouseticks are lme4's, bundled in src/mixedmodels/datasets/data).
#
# Needs R with lme4, glmmTMB, MASS and jsonlite (Debian: r-cran-lme4 r-cran-glmmtmb r-cran-mass
# r-cran-jsonlite). The versions used are recorded under "provenance" (R 4.2.2, lme4 1.1-31, glmmTMB 1.1.5).
#
# Every glmer model is fitted twice:
#   "glmer"  with glmer's defaults (what users see);
#   "tight"  with glmerControl(tolPwrss = 1e-12, optimizer = "nloptwrap", tight tolerances): the exact
#            Laplace/AGQ optimum. glmer's default PIRLS tolerance (tolPwrss = 1e-7, a relative change of
#            the penalised deviance) leaves log|L|^2 at the weights of the previous PIRLS iterate, so its
#            deviance function is off by ~5e-4 (cbpp: 184.053133 against 184.052572 at the same (theta, beta)),
#            and its stage-2 Nelder-Mead stops at xt = 5e-4 * xst; glmmTMB (exact Laplace, gradients from
#            automatic differentiation) agrees with "tight", not with the defaults.
# Summaries ("summary") are printed from both fits; the tight one has a "Control: tight" line.
# "devfun" holds glmer's deviance function with tolPwrss = 1e-14 (exact modes) evaluated at given
# (theta, beta): at the default fit's estimates and at a perturbed point, to test the objective alone.
#
# Data simulated here (seeds below):
#   glmm_poisson.csv    30 groups x 12: y ~ x + offset(log(exposure)) + (1 + x | g), Poisson
#   glmm_nb.csv         25 groups x 16: y ~ x + f + (1 | g), negative binomial (size 2)
#   glmm_separation.csv 20 groups x 12: y ~ x + trt + (1 | g), binary, every y = 0 where trt == "C"
#   glmm_singular.csv   15 groups x 10: y ~ x + (1 | g), binary, no group effect (a singular fit)
#
# JSON: numbers in full precision (digits = NA); NA as null; matrices as lists of rows; ranef/condsd
# for the first 5 levels of each grouping factor; fitted values and residuals for the first 8 rows.

suppressMessages({
  library(lme4)
  library(glmmTMB)
  library(MASS)
  library(jsonlite)
})

out_path <- "tests/reference/glmer.json"
data_dir <- "tests/reference/data"

tight <- glmerControl(tolPwrss = 1e-12, optimizer = "nloptwrap",
                      optCtrl = list(xtol_abs = 1e-10, ftol_abs = 1e-13, xtol_rel = 0, ftol_rel = 0, maxeval = 1e5))
exact <- glmerControl(tolPwrss = 1e-14)

# ---------------------------------------------------------------- simulated data
set.seed(20261201)
ng <- 30; m <- 12; n <- ng * m
g <- sprintf("g%02d", rep(1:ng, each = m))
x <- round(runif(n, -1, 1), 3)
exposure <- round(runif(n, 0.5, 3), 2)
b0 <- rnorm(ng, 0, 0.5); b1 <- rnorm(ng, 0, 0.3)
gi <- rep(1:ng, each = m)
y <- rpois(n, exp(0.3 + 0.6 * x + log(exposure) + b0[gi] + b1[gi] * x))
write.csv(data.frame(g, x, exposure, y), file.path(data_dir, "glmm_poisson.csv"), row.names = FALSE)

set.seed(20261202)
ng <- 25; m <- 16; n <- ng * m
g <- sprintf("g%02d", rep(1:ng, each = m))
x <- round(rnorm(n), 3)
f <- sample(c("a", "b", "c"), n, replace = TRUE)
b0 <- rnorm(ng, 0, 0.6)
gi <- rep(1:ng, each = m)
y <- rnbinom(n, size = 2, mu = exp(1 + 0.4 * x + c(a = 0, b = 0.5, c = -0.3)[f] + b0[gi]))
write.csv(data.frame(g, x, f, y), file.path(data_dir, "glmm_nb.csv"), row.names = FALSE)

set.seed(20261203)
ng <- 20; m <- 12; n <- ng * m
g <- sprintf("g%02d", rep(1:ng, each = m))
x <- round(rnorm(n), 3)
trt <- rep(c("A", "B", "C"), length.out = n)
b0 <- rnorm(ng, 0, 0.8)
gi <- rep(1:ng, each = m)
y <- rbinom(n, 1, plogis(-0.3 + 0.8 * x + 0.5 * (trt == "B") + b0[gi]))
y[trt == "C"] <- 0
write.csv(data.frame(g, x, trt, y), file.path(data_dir, "glmm_separation.csv"), row.names = FALSE)

set.seed(20261204)
ng <- 15; m <- 10; n <- ng * m
g <- sprintf("g%02d", rep(1:ng, each = m))
x <- round(rnorm(n), 3)
y <- rbinom(n, 1, plogis(0.2 + 0.7 * x))
write.csv(data.frame(g, x, y), file.path(data_dir, "glmm_singular.csv"), row.names = FALSE)

poisson_d <- read.csv(file.path(data_dir, "glmm_poisson.csv"))
nb_d <- read.csv(file.path(data_dir, "glmm_nb.csv"))
sep_d <- read.csv(file.path(data_dir, "glmm_separation.csv"))
sing_d <- read.csv(file.path(data_dir, "glmm_singular.csv"))

# ---------------------------------------------------------------- helpers
first_levels <- function(df, k = 5) {
  lapply(df, function(col) unname(col[seq_len(min(k, length(col)))]))
}

ranef_info <- function(m) {
  re <- ranef(m, condVar = TRUE)
  lapply(re, function(r) {
    pv <- attr(r, "postVar")
    k <- min(5, nrow(r))
    list(levels = rownames(r)[1:k],
         values = unname(lapply(1:k, function(i) unname(unlist(r[i, , drop = TRUE])))),
         condsd = unname(lapply(1:k, function(i) sqrt(diag(as.matrix(pv[, , i]))))))
  })
}

with_warnings <- function(expr) {
  msgs <- character()
  val <- withCallingHandlers(expr, warning = function(w) {
    msgs <<- c(msgs, conditionMessage(w)); invokeRestart("muffleWarning")
  }, message = function(m) {
    msgs <<- c(msgs, trimws(conditionMessage(m))); invokeRestart("muffleMessage")
  })
  list(value = val, messages = msgs)
}

glmer_info <- function(m, msgs = character(), summary_text = FALSE) {
  cw <- with_warnings(coef(summary(m)))
  cs <- cw$value
  msgs <- c(msgs, cw$messages)
  vc <- as.data.frame(VarCorr(m))
  out <- list(
    beta = unname(fixef(m)), names = names(fixef(m)),
    se = unname(cs[, "Std. Error"]), z = unname(cs[, "z value"]), p = unname(cs[, "Pr(>|z|)"]),
    se_rx = unname(sqrt(diag(as.matrix(suppressWarnings(vcov(m, use.hessian = FALSE)))))),
    theta = unname(getME(m, "theta")),
    varcorr = list(grp = vc$grp, var1 = vc$var1, var2 = vc$var2, vcov = vc$vcov, sdcor = vc$sdcor),
    loglik = as.numeric(logLik(m)), deviance = -2 * as.numeric(logLik(m)), deviance_resid = deviance(m),
    aic = AIC(m), bic = BIC(m), df_resid = df.residual(m), npar = attr(logLik(m), "df"),
    nobs = nobs(m), pars = unname(m@optinfo$val), fval = m@devcomp$cmp[["dev"]],
    feval = m@optinfo$feval, singular = isSingular(m), messages = msgs,
    ranef = ranef_info(m),
    fitted = unname(fitted(m)[1:8]),
    resid = list(deviance = unname(residuals(m, "deviance")[1:8]), pearson = unname(residuals(m, "pearson")[1:8]),
                 working = unname(residuals(m, "working")[1:8]), response = unname(residuals(m, "response")[1:8])),
    eta = unname(predict(m)[1:8]))
  if (summary_text) out$summary <- capture.output(print(summary(m)))
  out
}

# the call is built with the data as a name, so that summaries print "Data: cbpp" as for an interactive fit
glmer_call <- function(formula, data, family, nAGQ, weights, control = NULL, devFunOnly = FALSE) {
  cl <- substitute(glmer(F, data = D, family = FAM, nAGQ = N),
                   list(F = as.formula(formula), D = as.name(data), FAM = family, N = nAGQ))
  if (!is.null(weights)) cl$weights <- as.name(weights)
  if (!is.null(control)) cl$control <- as.name(control)
  if (devFunOnly) cl$devFunOnly <- TRUE
  cl
}

fit_glmer <- function(formula, data, family, nAGQ = 1, weights = NULL, summary_text = FALSE, newdata = NULL,
                      perturb = NULL) {
  t0 <- proc.time()[["elapsed"]]
  d <- with_warnings(eval(glmer_call(formula, data, family, nAGQ, weights), globalenv()))
  elapsed <- proc.time()[["elapsed"]] - t0
  res <- list(glmer = glmer_info(d$value, d$messages, summary_text))
  res$glmer$time_s <- elapsed
  t <- with_warnings(eval(glmer_call(formula, data, family, nAGQ, weights, control = "tight"), globalenv()))
  res$tight <- glmer_info(t$value, t$messages, summary_text)
  df <- eval(glmer_call(formula, data, family, nAGQ, weights, control = "exact", devFunOnly = TRUE), globalenv())
  pars <- d$value@optinfo$val
  pert <- if (is.null(perturb)) pars + 0.05 else perturb
  res$devfun <- list(points = list(unname(pars), unname(pert)), values = c(df(pars), df(pert)))
  if (!is.null(newdata)) {
    m <- t$value
    res$predict <- list(newdata = newdata,
                        link = unname(predict(m, newdata = newdata, allow.new.levels = TRUE)),
                        response = unname(predict(m, newdata = newdata, type = "response", allow.new.levels = TRUE)),
                        link_fixed = unname(predict(m, newdata = newdata, re.form = NA)),
                        response_fixed = unname(predict(m, newdata = newdata, re.form = NA, type = "response")))
  }
  res
}

tmb_info <- function(m) {
  cs <- summary(m)$coefficients$cond
  list(beta = unname(fixef(m)$cond), se = unname(cs[, "Std. Error"]), loglik = as.numeric(logLik(m)),
       sd = unname(unlist(lapply(VarCorr(m)$cond, function(v) attr(v, "stddev")))), groups = rep(names(VarCorr(m)$cond), sapply(VarCorr(m)$cond, nrow)),
       sigma = sigma(m), aic = AIC(m), npar = attr(logLik(m), "df"))
}

# ---------------------------------------------------------------- models
cbpp_form <- "cbind(incidence, size - incidence) ~ period + (1 | herd)"
cbpp_new <- data.frame(period = factor(c("1", "2", "4"), levels = levels(cbpp$period)),
                       herd = factor(c("1", "7", "15"), levels = levels(cbpp$herd)), size = c(10, 10, 10), incidence = 0)
fits <- list()
fits$cbpp_laplace <- c(list(formula = cbpp_form, data = "cbpp", family = "binomial", link = "logit", nAGQ = 1),
                       fit_glmer(cbpp_form, "cbpp", quote(binomial), summary_text = TRUE, newdata = cbpp_new))
fits$cbpp_laplace$tmb <- tmb_info(glmmTMB(as.formula(cbpp_form), cbpp, family = binomial))
fits$cbpp_agq0 <- c(list(formula = cbpp_form, data = "cbpp", family = "binomial", link = "logit", nAGQ = 0),
                    fit_glmer(cbpp_form, "cbpp", quote(binomial), nAGQ = 0, summary_text = TRUE))
fits$cbpp_agq9 <- c(list(formula = cbpp_form, data = "cbpp", family = "binomial", link = "logit", nAGQ = 9),
                    fit_glmer(cbpp_form, "cbpp", quote(binomial), nAGQ = 9, summary_text = TRUE))
fits$cbpp_agq25 <- c(list(formula = cbpp_form, data = "cbpp", family = "binomial", link = "logit", nAGQ = 25),
                     fit_glmer(cbpp_form, "cbpp", quote(binomial), nAGQ = 25))
fits$cbpp_prop <- c(list(formula = "incidence/size ~ period + (1 | herd)", data = "cbpp", family = "binomial",
                         link = "logit", nAGQ = 1, weights = "size"),
                    fit_glmer("incidence/size ~ period + (1 | herd)", "cbpp", quote(binomial), weights = "size"))
fits$cbpp_probit <- c(list(formula = cbpp_form, data = "cbpp", family = "binomial", link = "probit", nAGQ = 1),
                      fit_glmer(cbpp_form, "cbpp", quote(binomial(link = "probit"))))
fits$cbpp_cloglog <- c(list(formula = cbpp_form, data = "cbpp", family = "binomial", link = "cloglog", nAGQ = 1),
                       fit_glmer(cbpp_form, "cbpp", quote(binomial(link = "cloglog"))))
va_form <- "r2 ~ Anger + Gender + btype + situ + (1 | id) + (1 | item)"
fits$verbagg <- c(list(formula = va_form, data = "VerbAgg", family = "binomial", link = "logit", nAGQ = 1),
                  fit_glmer(va_form, "VerbAgg", quote(binomial), summary_text = TRUE))
fits$verbagg$tmb <- tmb_info(glmmTMB(as.formula(va_form), VerbAgg, family = binomial))
gt_form <- "TICKS ~ YEAR + cHEIGHT + (1 | BROOD) + (1 | LOCATION)"
fits$grouseticks <- c(list(formula = gt_form, data = "grouseticks", family = "poisson", link = "log", nAGQ = 1),
                      fit_glmer(gt_form, "grouseticks", quote(poisson), summary_text = TRUE))
fits$grouseticks$tmb <- tmb_info(glmmTMB(as.formula(gt_form), grouseticks, family = poisson))
# an observation-level random effect (INDEX: one level per row), which glmer allows (allow.n = TRUE)
gto_form <- "TICKS ~ YEAR + cHEIGHT + (1 | BROOD) + (1 | INDEX) + (1 | LOCATION)"
fits$grouseticks_olre <- c(list(formula = gto_form, data = "grouseticks", family = "poisson", link = "log", nAGQ = 1),
                           fit_glmer(gto_form, "grouseticks", quote(poisson)))
fits$grouseticks_olre$tmb <- tmb_info(glmmTMB(as.formula(gto_form), grouseticks, family = poisson))
po_form <- "y ~ x + offset(log(exposure)) + (1 + x | g)"
po_new <- data.frame(x = c(-0.5, 0, 0.8), exposure = c(1, 2, 0.5), g = c("g01", "g02", "g99"))
fits$poisson_offset <- c(list(formula = po_form, data = "glmm_poisson.csv", family = "poisson", link = "log", nAGQ = 1),
                         fit_glmer(po_form, "poisson_d", quote(poisson), newdata = po_new))
fits$poisson_offset$predict$newdata$g <- as.character(po_new$g)
fits$poisson_offset$tmb <- tmb_info(glmmTMB(as.formula(po_form), poisson_d, family = poisson))
sep_form <- "y ~ x + trt + (1 | g)"
fits$separation <- c(list(formula = sep_form, data = "glmm_separation.csv", family = "binomial", link = "logit", nAGQ = 1),
                     fit_glmer(sep_form, "sep_d", quote(binomial)))
sing_form <- "y ~ x + (1 | g)"
fits$singular <- c(list(formula = sing_form, data = "glmm_singular.csv", family = "binomial", link = "logit", nAGQ = 1),
                   fit_glmer(sing_form, "sing_d", quote(binomial), perturb = c(0.2, 0.1, 0.6)))

# negative binomial NB2: glmmTMB's nbinom2 (theta estimated with the rest) and lme4's glmer.nb
nb_form <- "y ~ x + f + (1 | g)"
t0 <- proc.time()[["elapsed"]]
nb_tmb <- glmmTMB(as.formula(nb_form), nb_d, family = nbinom2)
tmb_time <- proc.time()[["elapsed"]] - t0
nb_glmer <- with_warnings(glmer.nb(as.formula(nb_form), nb_d))
fits$nb2 <- list(formula = nb_form, data = "glmm_nb.csv", family = "nbinom2", link = "log", nAGQ = 1,
                 tmb = c(tmb_info(nb_tmb), list(theta = sigma(nb_tmb), time_s = tmb_time,
                                                ranef = unname(ranef(nb_tmb)$cond$g[1:5, 1]))),
                 glmer_nb = c(glmer_info(nb_glmer$value, nb_glmer$messages),
                              list(nb_theta = getME(nb_glmer$value, "glmer.nb.theta"))))

gh <- lapply(c(9, 25), function(k) { r <- GHrule(k); list(n = k, z = unname(r[, "z"]), w = unname(r[, "w"])) })

provenance <- list(
  R = R.version.string,
  lme4 = as.character(packageVersion("lme4")),
  glmmTMB = as.character(packageVersion("glmmTMB")),
  MASS = as.character(packageVersion("MASS")),
  TMB = as.character(packageVersion("TMB")),
  jsonlite = as.character(packageVersion("jsonlite")),
  date = format(Sys.Date()),
  script = "tests/reference/glmer.R"
)
writeLines(toJSON(list(provenance = provenance, ghrule = gh, fits = fits), auto_unbox = TRUE, digits = NA,
                  null = "null", na = "null", pretty = FALSE),
           out_path)
cat("wrote", out_path, "\n")
