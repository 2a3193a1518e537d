# Reference fits from lme4 for tests/test_lme4_reference.py.
# Regenerate from the repository root with:   Rscript tests/reference/lme4_fits.R
# (Debian: apt-get install r-cran-lme4 r-cran-jsonlite). Writes tests/reference/lme4_fits.json.
suppressMessages({library(lme4); library(jsonlite)})

models <- list(
  sleepstudy_reml      = list("sleepstudy", "Reaction ~ Days + (Days | Subject)", TRUE),
  sleepstudy_ml        = list("sleepstudy", "Reaction ~ Days + (Days | Subject)", FALSE),
  sleepstudy_intercept = list("sleepstudy", "Reaction ~ Days + (1 | Subject)", TRUE),
  sleepstudy_uncorr    = list("sleepstudy", "Reaction ~ Days + (Days || Subject)", TRUE),
  sleepstudy_slope_only= list("sleepstudy", "Reaction ~ Days + (0 + Days | Subject)", TRUE),
  sleepstudy_rankdef   = list("sleepstudy", "Reaction ~ Days + I(2 * Days) + (1 | Subject)", TRUE),
  dyestuff             = list("Dyestuff", "Yield ~ 1 + (1 | Batch)", TRUE),
  dyestuff_ml          = list("Dyestuff", "Yield ~ 1 + (1 | Batch)", FALSE),
  dyestuff2            = list("Dyestuff2", "Yield ~ 1 + (1 | Batch)", TRUE),
  penicillin           = list("Penicillin", "diameter ~ 1 + (1 | plate) + (1 | sample)", TRUE),
  pastes               = list("Pastes", "strength ~ 1 + (1 | batch/cask)", TRUE),
  cake                 = list("cake", "angle ~ recipe + temp + (1 | recipe:replicate)", TRUE),
  insteval_ml          = list("InstEval", "y ~ service * dept + (1 | s) + (1 | d)", FALSE)
)

big <- c("insteval_ml")   # store only the first rows of long vectors for these
out <- list(provenance = list(R = R.version.string, lme4 = as.character(packageVersion("lme4")),
                              generated_by = "tests/reference/lme4_fits.R", date = as.character(Sys.Date())))

for (key in names(models)) {
  spec <- models[[key]]
  dat <- get(spec[[1]]); form <- as.formula(spec[[2]]); reml <- spec[[3]]
  msgs <- character(0)
  fitfun <- function() withCallingHandlers(lmer(form, dat, REML = reml),
      warning = function(w) { msgs <<- c(msgs, conditionMessage(w)); invokeRestart("muffleWarning") },
      message = function(m) { msgs <<- c(msgs, trimws(conditionMessage(m))); invokeRestart("muffleMessage") })
  reps <- if (key %in% big) 1 else 3
  times <- numeric(reps)
  for (i in seq_len(reps)) { msgs <- character(0); times[i] <- system.time(m <- fitfun())[["elapsed"]] }
  cf <- coef(summary(m))
  vc <- as.data.frame(VarCorr(m))
  head_n <- function(x) if (key %in% big) unname(x[1:50]) else unname(x)
  rec <- list(
    dataset = spec[[1]], formula = spec[[2]], REML = reml,
    nobs = nobs(m), ngrps = as.list(ngrps(m)),
    loglik = as.numeric(logLik(m)), df_loglik = attr(logLik(m), "df"),
    aic = AIC(m), bic = BIC(m), sigma = sigma(m),
    theta = unname(getME(m, "theta")), theta_names = names(getME(m, "theta")),
    lower = getME(m, "lower"),
    fixef = list(names = rownames(cf), estimate = unname(cf[, 1]), std_error = unname(cf[, 2]), t_value = unname(cf[, 3])),
    vcov = unname(lapply(seq_len(nrow(vcov(m))), function(i) unname(as.matrix(vcov(m))[i, ]))),
    varcorr = lapply(seq_len(nrow(vc)), function(i) list(grp = vc$grp[i],
        var1 = if (is.na(vc$var1[i])) NULL else vc$var1[i], var2 = if (is.na(vc$var2[i])) NULL else vc$var2[i],
        vcov = vc$vcov[i], sdcor = vc$sdcor[i])),
    df_residual = df.residual(m), feval = m@optinfo$feval, optimizer = m@optinfo$optimizer,
    singular = isSingular(m), messages = msgs,
    dropped_columns = setdiff(names(fixef(m, add.dropped = TRUE)), names(fixef(m))),
    fitted = head_n(fitted(m)), residuals = head_n(residuals(m)),
    fitted_fixed_only = head_n(predict(m, re.form = NA)),
    time_s = median(times)
  )
  if (reml) rec$reml_criterion <- unname(getME(m, "devcomp")$cmp["REML"]) else rec$deviance <- unname(getME(m, "devcomp")$cmp["dev"])
  re <- ranef(m, condVar = TRUE)
  rec$ranef <- list()
  for (g in names(re)) {
    r <- re[[g]]; pv <- attr(r, "postVar")
    nl <- if (key %in% big) min(20, nrow(r)) else nrow(r)
    rows <- seq_len(nl)
    # postVar is p x p x levels; for ||-terms lme4 gives a list of such arrays, one per term
    sds <- if (is.list(pv)) do.call(cbind, lapply(pv, function(a) t(sapply(rows, function(l) sqrt(diag(as.matrix(a[, , l])))))))
           else t(matrix(sapply(rows, function(l) sqrt(diag(as.matrix(pv[, , l])))), nrow = ncol(r)))
    sds <- matrix(sds, nrow = nl)
    rec$ranef[[g]] <- list(levels = rownames(r)[rows], columns = colnames(r),
                           values = lapply(rows, function(i) unname(as.numeric(r[i, ]))),
                           condsd = lapply(rows, function(i) unname(as.numeric(sds[i, ]))))
  }
  if (key == "sleepstudy_reml") {
    nd <- data.frame(Days = c(0, 5, 9, 3), Subject = c("308", "335", "372", "999"))
    rec$predict_newdata <- list(with_random = unname(predict(m, newdata = nd, allow.new.levels = TRUE)),
                                fixed_only = unname(predict(m, newdata = nd, re.form = NA)))
  }
  out[[key]] <- rec
  cat(sprintf("%-22s loglik %.6f  feval %d  time %.3fs  %s\n", key, rec$loglik, rec$feval, rec$time_s, paste(msgs, collapse = "; ")))
}
write_json(out, "tests/reference/lme4_fits.json", digits = NA, auto_unbox = TRUE, pretty = TRUE, null = "null", na = "null")
