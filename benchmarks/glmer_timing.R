# glmer timings for benchmarks/bench_glmm.py: median elapsed time of `reps` fits with glmer's defaults,
# glmer's stage-2 evaluation count and the peak of R's memory in use during one fit (gc "max used").
# Usage: Rscript benchmarks/glmer_timing.R <reps>; prints one JSON object.
suppressMessages({library(lme4); library(jsonlite)})
args <- commandArgs(trailingOnly = TRUE)
reps <- if (length(args)) as.integer(args[1]) else 5L
models <- list(
  cbpp = quote(glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), data = cbpp, family = binomial)),
  cbpp_agq9 = quote(glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), data = cbpp, family = binomial, nAGQ = 9)),
  VerbAgg = quote(glmer(r2 ~ Anger + Gender + btype + situ + (1 | id) + (1 | item), data = VerbAgg, family = binomial))
)
out <- list()
for (name in names(models)) {
  m <- eval(models[[name]])  # warm-up
  times <- numeric(reps)
  for (i in seq_len(reps)) times[i] <- system.time(m <- eval(models[[name]]))[["elapsed"]]
  invisible(gc(reset = TRUE))
  before <- sum(gc()[, 2])
  m <- eval(models[[name]])
  peak <- sum(gc()[, 6]) - before  # Mb: "max used" since the reset, less what was in use before
  out[[name]] <- list(median_s = median(times), feval = m@optinfo$feval, loglik = as.numeric(logLik(m)),
                      peak_mb = peak)
}
out$versions <- list(R = R.version.string, lme4 = as.character(packageVersion("lme4")))
cat(toJSON(out, auto_unbox = TRUE, digits = NA))
