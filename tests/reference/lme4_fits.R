# Reference fits from lme4, used by tests/test_lme4_reference.py.
#
# Regenerate (from the repository root):
#     Rscript tests/reference/lme4_fits.R
# This writes tests/reference/lme4_fits.json (the path is relative to the repo root).
#
# Generated with R 4.2.2 Patched (2022-11-10 r83330) and lme4 1.1-31 (plus jsonlite);
# the exact versions used are recorded in the JSON under "provenance".
# Debian/Ubuntu: apt-get install r-cran-lme4 r-cran-jsonlite
#
# All data sets are the ones shipped with lme4 (sleepstudy, Dyestuff, Dyestuff2,
# Penicillin, Pastes, InstEval, cake).  Every model is fitted with lmer()'s defaults
# (optimizer, control settings) apart from REML.
#
# JSON conventions:
#   * numbers are written with full precision (digits = NA);
#   * vectors that are conceptually arrays are always JSON arrays, even of length 1;
#   * R's NA and non-finite values (e.g. -Inf in "lower") are written as null;
#   * matrices ("vcov", ranef "values"/"condsd") are lists of rows;
#   * for the InstEval models only the first 50 fitted values / residuals and the
#     first 20 levels of each grouping factor's conditional modes are stored.
#   * time_s is the median elapsed time of 3 fits (1 fit for InstEval); it is
#     machine dependent and only meant as a rough yardstick.

suppressMessages({
  library(lme4)
  library(jsonlite)
})

out_path <- "tests/reference/lme4_fits.json"

# ---- models: key = list(dataset, formula, REML) ------------------------------
models <- list(
  sleepstudy_reml       = list("sleepstudy", "Reaction ~ Days + (Days | Subject)", TRUE),
  sleepstudy_ml         = list("sleepstudy", "Reaction ~ Days + (Days | Subject)", FALSE),
  sleepstudy_intercept  = list("sleepstudy", "Reaction ~ Days + (1 | Subject)", TRUE),
  sleepstudy_uncorr     = list("sleepstudy", "Reaction ~ Days + (Days || Subject)", TRUE),
  sleepstudy_slope_only = list("sleepstudy", "Reaction ~ Days + (0 + Days | Subject)", TRUE),
  sleepstudy_rankdef    = list("sleepstudy", "Reaction ~ Days + I(2 * Days) + (1 | Subject)", TRUE),
  dyestuff              = list("Dyestuff", "Yield ~ 1 + (1 | Batch)", TRUE),
  dyestuff_ml           = list("Dyestuff", "Yield ~ 1 + (1 | Batch)", FALSE),
  dyestuff2             = list("Dyestuff2", "Yield ~ 1 + (1 | Batch)", TRUE),
  penicillin            = list("Penicillin", "diameter ~ 1 + (1 | plate) + (1 | sample)", TRUE),
  pastes                = list("Pastes", "strength ~ 1 + (1 | batch/cask)", TRUE),
  cake                  = list("cake", "angle ~ recipe + temp + (1 | recipe:replicate)", TRUE),
  insteval_ml           = list("InstEval", "y ~ service * dept + (1 | s) + (1 | d)", FALSE),
  insteval_reml         = list("InstEval", "y ~ service * dept + (1 | s) + (1 | d)", TRUE)
)

# Large models: one timing fit, truncated vectors, first levels of ranef only.
big <- c("insteval_ml", "insteval_reml")
optional <- c("insteval_reml")   # kept only if one fit takes < optional_limit_s
optional_limit_s <- 60
n_head_obs <- 50
n_head_levels <- 20

# ---- helpers -----------------------------------------------------------------

# Array-valued fields are wrapped in I() so that auto_unbox never turns a
# length-1 vector into a JSON scalar.
arr <- function(x) I(unname(x))
na_null <- function(x) if (is.na(x)) NULL else x
rows_of <- function(mat) lapply(seq_len(nrow(mat)), function(i) arr(as.numeric(mat[i, ])))

# Fit once, collecting the text of every warning and message lme4 emits.
fit_capturing <- function(form, dat, reml) {
  msgs <- character(0)
  m <- withCallingHandlers(
    lmer(form, data = dat, REML = reml),
    warning = function(w) {
      msgs <<- c(msgs, trimws(conditionMessage(w)))
      invokeRestart("muffleWarning")
    },
    message = function(e) {
      msgs <<- c(msgs, trimws(conditionMessage(e)))
      invokeRestart("muffleMessage")
    }
  )
  list(model = m, messages = msgs)
}

# Conditional standard deviations (sqrt of the diagonal of postVar) for the
# given levels of one grouping factor.  postVar is a p x p x nlevels array, or,
# when several terms share the grouping factor (e.g. (Days || Subject)), a list
# of such arrays, one per term, whose columns are concatenated in term order.
cond_sd <- function(re_g, levels_idx) {
  pv <- attr(re_g, "postVar")
  pv_list <- if (is.list(pv)) pv else list(pv)
  sds <- do.call(cbind, lapply(pv_list, function(a) {
    t(vapply(levels_idx, function(l) sqrt(diag(as.matrix(a[, , l]))),
             numeric(dim(a)[1])))
  }))
  matrix(sds, nrow = length(levels_idx))
}

ranef_record <- function(m, n_levels = Inf) {
  re <- ranef(m, condVar = TRUE)
  res <- list()
  for (g in names(re)) {
    r <- re[[g]]
    idx <- seq_len(min(n_levels, nrow(r)))
    sds <- cond_sd(r, idx)
    stopifnot(ncol(sds) == ncol(r))
    res[[g]] <- list(
      levels  = arr(rownames(r)[idx]),
      columns = arr(colnames(r)),
      values  = rows_of(as.matrix(r[idx, , drop = FALSE])),
      condsd  = rows_of(sds)
    )
  }
  res
}

model_record <- function(key, spec, m, msgs, times) {
  is_big <- key %in% big
  head_or_all <- function(x) arr(if (is_big) x[seq_len(n_head_obs)] else x)
  reml <- spec[[3]]
  ll <- logLik(m)
  cf <- coef(summary(m))
  V <- as.matrix(vcov(m))
  vc <- as.data.frame(VarCorr(m))
  cmp <- getME(m, "devcomp")$cmp

  rec <- list(
    dataset = spec[[1]],
    formula = spec[[2]],
    REML = reml,
    nobs = nobs(m),
    ngrps = as.list(ngrps(m)),
    loglik = as.numeric(ll),
    df_loglik = attr(ll, "df"),
    aic = AIC(m),
    bic = BIC(m),
    sigma = sigma(m),
    theta = arr(getME(m, "theta")),
    theta_names = arr(names(getME(m, "theta"))),
    lower = arr(getME(m, "lower")),            # -Inf is written as null
    fixef = list(
      names     = arr(rownames(cf)),
      estimate  = arr(cf[, "Estimate"]),
      std_error = arr(cf[, "Std. Error"]),
      t_value   = arr(cf[, "t value"])
    ),
    vcov = rows_of(V),
    varcorr = lapply(seq_len(nrow(vc)), function(i) list(
      grp = vc$grp[i], var1 = na_null(vc$var1[i]), var2 = na_null(vc$var2[i]),
      vcov = vc$vcov[i], sdcor = vc$sdcor[i])),
    df_residual = df.residual(m),
    feval = m@optinfo$feval,
    optimizer = m@optinfo$optimizer,
    singular = isSingular(m),
    messages = arr(msgs),
    dropped_columns = arr(setdiff(names(fixef(m, add.dropped = TRUE)), names(fixef(m))))
  )
  # REML fits: the REML criterion; ML fits: the deviance (-2 log-likelihood).
  if (reml) rec$reml_criterion <- unname(cmp["REML"]) else rec$deviance <- unname(cmp["dev"])

  rec$ranef <- ranef_record(m, if (is_big) n_head_levels else Inf)
  rec$fitted <- head_or_all(fitted(m))
  rec$residuals <- head_or_all(residuals(m))
  rec$fitted_fixed_only <- head_or_all(predict(m, re.form = NA))
  rec$time_s <- median(times)

  if (key == "sleepstudy_reml") {
    # "999" is not a subject in sleepstudy: it gets the population-level prediction.
    nd <- data.frame(Days = c(0, 5, 9, 3), Subject = c("308", "335", "372", "999"))
    rec$predict_newdata <- list(
      newdata = list(Days = arr(nd$Days), Subject = arr(nd$Subject)),
      with_random = arr(predict(m, newdata = nd, allow.new.levels = TRUE)),
      fixed_only = arr(predict(m, newdata = nd, re.form = NA))
    )
  }
  rec
}

# ---- fit everything ----------------------------------------------------------
out <- list(provenance = list(
  R = R.version.string,
  lme4 = as.character(packageVersion("lme4")),
  generated_by = "tests/reference/lme4_fits.R",
  date = as.character(Sys.Date())
))

t_start <- proc.time()[["elapsed"]]
cat(sprintf("%-22s %18s %6s %9s  %s\n", "model", "loglik", "feval", "time_s", "messages"))
for (key in names(models)) {
  spec <- models[[key]]
  dat <- get(spec[[1]], envir = asNamespace("lme4"))
  form <- as.formula(spec[[2]])
  reps <- if (key %in% big) 1 else 3
  times <- numeric(reps)
  for (i in seq_len(reps)) {
    times[i] <- system.time(fit <- fit_capturing(form, dat, spec[[3]]))[["elapsed"]]
  }
  if (key %in% optional && times[1] >= optional_limit_s) {
    cat(sprintf("%-22s skipped: fit took %.1f s (limit %d s)\n", key, times[1], optional_limit_s))
    next
  }
  rec <- model_record(key, spec, fit$model, fit$messages, times)
  out[[key]] <- rec
  cat(sprintf("%-22s %18.10f %6d %9.3f  %s\n", key, rec$loglik, rec$feval, rec$time_s,
              paste(fit$messages, collapse = " | ")))
}

write_json(out, out_path, digits = NA, auto_unbox = TRUE, pretty = TRUE,
           null = "null", na = "null")
cat(sprintf("wrote %s (%d models) in %.1f s\n", out_path, length(out) - 1,
            proc.time()[["elapsed"]] - t_start))
