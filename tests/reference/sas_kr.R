# SAS PROC MIXED Kenward-Roger results for MMRMs on mmrm's fev_data, with mmrm's own numbers from the
# same fits (tests/inference/test_kr_sas.py).
#
# Regenerate (from the repository root), with a checkout of openpharma/mmrm at tag v0.3.14:
#     git -C <mmrm checkout> archive v0.3.14 design/ddfm_covtype | tar -x -C /tmp/mmrmsrc
#     Rscript tests/reference/sas_kr.R /tmp/mmrmsrc/design/ddfm_covtype
# which writes tests/reference/data/fev_data.csv and tests/reference/sas_kr.json.
#
# The SAS figures are mmrm's published comparison outputs (design/ddfm_covtype/kr_<type>.csv: PROC
# MIXED, REML, DDFM=KR; kr1_<type>.csv: DDFM=KR(FIRSTORDER)) for FEV1 ~ ARMCD with a REPEATED
# structure by USUBJID over AVISIT; the row is the LSMEANS difference TRT - PBO. Needs R with mmrm
# 0.3.14 (see tests/reference/mmrm_df.R for installing it) and jsonlite.

suppressMessages({
  library(mmrm)
  library(jsonlite)
})
dir <- commandArgs(TRUE)[1]
write.csv(fev_data, "tests/reference/data/fev_data.csv", row.names = FALSE)
types <- c(us = "us", toep = "toep", toeph = "toeph", cs = "cs", csh = "csh", adh = "adh", ar1 = "ar1", ar1h = "arh1")
out <- list(provenance = list(R = R.version.string, mmrm = as.character(packageVersion("mmrm")),
                              sas = "mmrm v0.3.14 design/ddfm_covtype/kr_<type>.csv and kr1_<type>.csv"))
for (ours in names(types)) {
  sas <- read.csv(file.path(dir, paste0("kr_", types[[ours]], ".csv")))
  sas1 <- read.csv(file.path(dir, paste0("kr1_", types[[ours]], ".csv")))
  f <- as.formula(paste0("FEV1 ~ ARMCD + ", ours, "(AVISIT | USUBJID)"))
  kr <- mmrm(f, data = fev_data, reml = TRUE, method = "Kenward-Roger")
  krl <- mmrm(f, data = fev_data, reml = TRUE, method = "Kenward-Roger", vcov = "Kenward-Roger-Linear")
  one <- function(m) { r <- df_1d(m, contrast = c(0, 1)); list(estimate = r$est, se = r$se, df = r$df) }
  out[[ours]] <- list(
    sas_kr = list(estimate = sas$Estimate, se = sas$StdErr, df = sas$DF),
    sas_kr_firstorder = list(estimate = sas1$Estimate, se = sas1$StdErr, df = sas1$DF),
    mmrm_kr = one(kr), mmrm_kr_linear = one(krl), mmrm_loglik = as.numeric(logLik(kr))
  )
}
# mmrm's model selection criteria (its summary's layout is the one tests/test_report.py checks)
m <- mmrm(FEV1 ~ ARMCD * AVISIT + us(AVISIT | USUBJID), data = fev_data, reml = TRUE)
out$criteria_us <- list(AIC = AIC(m), BIC = BIC(m), logLik = as.numeric(logLik(m)), deviance = deviance(m))
mml <- mmrm(FEV1 ~ ARMCD * AVISIT + us(AVISIT | USUBJID), data = fev_data, reml = FALSE)
out$criteria_us_ml <- list(AIC = AIC(mml), BIC = BIC(mml), logLik = as.numeric(logLik(mml)), deviance = deviance(mml))
write_json(out, "tests/reference/sas_kr.json", digits = NA, auto_unbox = TRUE, pretty = TRUE)
