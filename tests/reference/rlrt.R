# Reference values from RLRsim's exactRLRT, used by tests/inference/test_rlrt_reference.py.
#
# Regenerate (from the repository root):  Rscript tests/reference/rlrt.R
# Needs lme4, RLRsim and jsonlite (Debian: r-cran-lme4 r-cran-rlrsim r-cran-jsonlite).
# The p-values are Monte-Carlo estimates from nsim = 200000 simulations (seed 1).
suppressMessages({library(lme4); library(RLRsim); library(jsonlite)})
nsim <- 200000
case <- function(m, mA = NULL, m0 = NULL) {
  t <- suppressMessages(if (is.null(mA)) exactRLRT(m, nsim = nsim, seed = 1) else exactRLRT(m, mA, m0, nsim = nsim, seed = 1))
  s <- t$sample
  list(statistic = unname(t$statistic), p_value = t$p.value, nsim = nsim,
       mass_at_zero = if (is.null(s)) NULL else mean(s == 0),
       quantiles = if (is.null(s)) NULL else unname(quantile(s, c(0.5, 0.9, 0.95, 0.99))))
}
ss <- sleepstudy
out <- list(
  sleep_intercept = c(list(dataset = "sleepstudy", formula = "Reaction ~ Days + (1 | Subject)"),
                      case(lmer(Reaction ~ Days + (1 | Subject), ss))),
  dyestuff = c(list(dataset = "Dyestuff", formula = "Yield ~ 1 + (1 | Batch)"),
               case(lmer(Yield ~ 1 + (1 | Batch), Dyestuff))),
  dyestuff2 = c(list(dataset = "Dyestuff2", formula = "Yield ~ 1 + (1 | Batch)"),
                case(suppressMessages(lmer(Yield ~ 1 + (1 | Batch), Dyestuff2)))),
  sleep_slope = c(list(dataset = "sleepstudy", alt = "Reaction ~ Days + (1 | Subject) + (0 + Days | Subject)",
                       null = "Reaction ~ Days + (1 | Subject)", single = "Reaction ~ Days + (0 + Days | Subject)"),
                  case(lmer(Reaction ~ Days + (0 + Days | Subject), ss),
                       lmer(Reaction ~ Days + (1 | Subject) + (0 + Days | Subject), ss),
                       lmer(Reaction ~ Days + (1 | Subject), ss)))
)
provenance <- list(script = "tests/reference/rlrt.R", R = R.version.string, lme4 = as.character(packageVersion("lme4")),
                   RLRsim = as.character(packageVersion("RLRsim")), generated = format(Sys.time(), "%Y-%m-%d"))
writeLines(toJSON(list(provenance = provenance, cases = out), digits = NA, auto_unbox = TRUE, pretty = TRUE, null = "null"),
           "tests/reference/rlrt.json")
cat("wrote tests/reference/rlrt.json\n")
