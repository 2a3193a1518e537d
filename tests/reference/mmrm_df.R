# Reference values for MMRM fits through the engine (tests/test_residual_engine.py): mmrm's Satterthwaite
# df and standard errors, and its Kenward-Roger df, on the trial data of tests/reference/residual.R.
#
# Regenerate (from the repository root):
#     Rscript tests/reference/mmrm_df.R
# which writes tests/reference/mmrm_df.json.
#
# Needs R with mmrm 0.3.14 (not in Debian: R CMD INSTALL from the tag v0.3.14 of openpharma/mmrm, with its
# dependencies from Debian: r-cran-tmb r-cran-rcppeigen r-cran-checkmate r-cran-generics r-cran-lifecycle
# r-cran-rdpack r-cran-stringr r-cran-tibble) and jsonlite. Versions under "provenance".

suppressMessages({
  library(mmrm)
  library(emmeans)
  library(jsonlite)
})
d <- read.csv("tests/reference/data/residual_trial.csv", stringsAsFactors = TRUE)
d$visit <- factor(d$visit)
d$id <- factor(d$id)
out <- list(provenance = list(R = R.version.string, mmrm = as.character(packageVersion("mmrm")),
                              TMB = as.character(packageVersion("TMB"))))
for (spec in c("us(visit | id)", "ar1(visit | id)", "toeph(visit | id)", "cs(visit | arm / id)")) {
  f <- as.formula(paste("y ~ arm * visit + base +", spec))
  entry <- list(spec = spec)
  for (method in c("Satterthwaite", "Kenward-Roger", "Kenward-Roger-Linear")) {
    m <- if (method == "Kenward-Roger-Linear") {
      mmrm(f, data = d, reml = TRUE, method = "Kenward-Roger", vcov = "Kenward-Roger-Linear")
    } else {
      mmrm(f, data = d, reml = TRUE, method = method)
    }
    ct <- summary(m)$coefficients
    entry[[method]] <- list(loglik = as.numeric(logLik(m)), term = rownames(ct), estimate = unname(ct[, "Estimate"]),
                            se = unname(ct[, "Std. Error"]), df = unname(ct[, "df"]), p = unname(ct[, "Pr(>|t|)"]))
  }
  out[[spec]] <- entry
}
# least-squares means of the us fit (emmeans 1.8 through mmrm's emmeans support; Satterthwaite df)
m <- mmrm(y ~ arm * visit + base + us(visit | id), data = d, reml = TRUE, method = "Satterthwaite")
em <- emmeans(m, ~ arm | visit)
tab <- as.data.frame(summary(em))
con <- as.data.frame(summary(contrast(em, method = "revpairwise")))
out$emmeans_us <- list(arm = as.character(tab$arm), visit = as.character(tab$visit), emmean = tab$emmean, se = tab$SE,
                       df = tab$df, contrast = as.character(con$contrast), estimate = con$estimate, c_se = con$SE,
                       c_df = con$df, p = con$p.value)
out$provenance$emmeans <- as.character(packageVersion("emmeans"))
write_json(out, "tests/reference/mmrm_df.json", digits = NA, auto_unbox = TRUE, pretty = TRUE)
