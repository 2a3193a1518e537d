# Times lme4's lmer() on the benchmark models; called by benchmarks/bench_fit.py when R is present.
# Usage: Rscript benchmarks/lme4_timing.R <reps_small> <reps_large>
# Prints one JSON object: {"sleepstudy": {"median_s", "feval"}, "insteval": {...}, "versions": ...}
suppressMessages(library(lme4))
args <- commandArgs(trailingOnly = TRUE)
reps_small <- if (length(args) >= 1) as.integer(args[1]) else 50L
reps_large <- if (length(args) >= 2) as.integer(args[2]) else 3L
time_fit <- function(expr_fun, reps) {
  times <- numeric(reps)
  fit <- NULL
  for (i in seq_len(reps)) {
    t0 <- proc.time()[["elapsed"]]
    fit <- expr_fun()
    times[i] <- proc.time()[["elapsed"]] - t0
  }
  list(median_s = median(times), feval = fit@optinfo$feval)
}
ss <- time_fit(function() lmer(Reaction ~ Days + (Days | Subject), sleepstudy), reps_small)
ie <- time_fit(function() lmer(y ~ service * dept + (1 | s) + (1 | d), InstEval, REML = FALSE), reps_large)
cat(jsonlite::toJSON(list(sleepstudy = ss, insteval = ie,
                          versions = list(R = R.version.string, lme4 = as.character(packageVersion("lme4")))),
                     auto_unbox = TRUE, digits = NA), "\n")
