# Reference values from RLRsim's exactRLRT, used by tests/inference/test_rlrt_reference.py and
# tests/inference/test_rlrt.py.
#
# Regenerate (from the repository root):  Rscript tests/reference/rlrt.R
# Needs lme4, RLRsim and jsonlite (Debian: r-cran-lme4 r-cran-rlrsim r-cran-jsonlite).
# The p-values are Monte-Carlo estimates from nsim = 200000 simulations (seed 1); mass_at_zero and
# quantiles (0.5, 0.9, 0.95, 0.99) describe RLRsim's simulated null sample.
# Single-term cases also store the REML log-likelihoods of the fit (reml_alt) and of the linear model
# without the random effect (reml_null = logLik(lm(...), REML = TRUE)); multi-term cases those of mA and m0.
# The data are lme4's own; src/mixedmodels/datasets/data/*.csv are copies with the same factor levels.
suppressMessages({library(lme4); library(RLRsim); library(jsonlite)})
nsim <- 200000
case <- function(m, mA = NULL, m0 = NULL) {
  t <- suppressMessages(if (is.null(mA)) exactRLRT(m, nsim = nsim, seed = 1) else exactRLRT(m, mA, m0, nsim = nsim, seed = 1))
  s <- t$sample
  if (is.null(mA)) {
    fixed <- lme4::nobars(formula(m))
    lik <- list(reml_alt = logLik(m, REML = TRUE)[1],
                reml_null = logLik(lm(fixed, data = model.frame(m)), REML = TRUE)[1])
  } else {
    lik <- list(reml_alt = logLik(mA, REML = TRUE)[1], reml_null = logLik(m0, REML = TRUE)[1])
  }
  c(list(statistic = unname(t$statistic), p_value = t$p.value, nsim = nsim,
         mass_at_zero = if (is.null(s)) NULL else mean(s == 0),
         quantiles = if (is.null(s)) NULL else unname(quantile(s, c(0.5, 0.9, 0.95, 0.99)))),
    lik)
}
fit <- function(f, d) suppressMessages(lmer(f, d, REML = TRUE))
ss <- sleepstudy
gt <- grouseticks
gt_fixed <- "log(TICKS + 1) ~ YEAR + cHEIGHT"
out <- list(
  sleep_intercept = c(list(dataset = "sleepstudy", formula = "Reaction ~ Days + (1 | Subject)"),
                      case(fit(Reaction ~ Days + (1 | Subject), ss))),
  dyestuff = c(list(dataset = "Dyestuff", formula = "Yield ~ 1 + (1 | Batch)"),
               case(fit(Yield ~ 1 + (1 | Batch), Dyestuff))),
  dyestuff2 = c(list(dataset = "Dyestuff2", formula = "Yield ~ 1 + (1 | Batch)"),
                case(fit(Yield ~ 1 + (1 | Batch), Dyestuff2))),
  sleep_slope_only = c(list(dataset = "sleepstudy", formula = "Reaction ~ Days + (0 + Days | Subject)"),
                       case(fit(Reaction ~ Days + (0 + Days | Subject), ss))),
  sleep_slope = c(list(dataset = "sleepstudy", alt = "Reaction ~ Days + (1 | Subject) + (0 + Days | Subject)",
                       null = "Reaction ~ Days + (1 | Subject)", single = "Reaction ~ Days + (0 + Days | Subject)"),
                  case(fit(Reaction ~ Days + (0 + Days | Subject), ss),
                       fit(Reaction ~ Days + (1 | Subject) + (0 + Days | Subject), ss),
                       fit(Reaction ~ Days + (1 | Subject), ss))),
  pastes_batch = c(list(dataset = "Pastes", alt = "strength ~ 1 + (1 | batch) + (1 | batch:cask)",
                        null = "strength ~ 1 + (1 | batch:cask)", single = "strength ~ 1 + (1 | batch)"),
                   case(fit(strength ~ 1 + (1 | batch), Pastes),
                        fit(strength ~ 1 + (1 | batch) + (1 | batch:cask), Pastes),
                        fit(strength ~ 1 + (1 | batch:cask), Pastes))),
  grouse_location = c(list(dataset = "grouseticks", alt = paste(gt_fixed, "+ (1 | BROOD) + (1 | LOCATION)"),
                           null = paste(gt_fixed, "+ (1 | BROOD)"), single = paste(gt_fixed, "+ (1 | LOCATION)")),
                      case(fit(as.formula(paste(gt_fixed, "+ (1 | LOCATION)")), gt),
                           fit(as.formula(paste(gt_fixed, "+ (1 | BROOD) + (1 | LOCATION)")), gt),
                           fit(as.formula(paste(gt_fixed, "+ (1 | BROOD)")), gt)))
)
provenance <- list(script = "tests/reference/rlrt.R", R = R.version.string, lme4 = as.character(packageVersion("lme4")),
                   RLRsim = as.character(packageVersion("RLRsim")), generated = format(Sys.time(), "%Y-%m-%d"))
writeLines(toJSON(list(provenance = provenance, cases = out), digits = NA, auto_unbox = TRUE, pretty = TRUE, null = "null"),
           "tests/reference/rlrt.json")
cat("wrote tests/reference/rlrt.json\n")
