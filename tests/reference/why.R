# Reference values for the naive analyses beside the mixed model (mixedmodels.naive, tests/test_why.py).
#
# Regenerate (from the repository root):
#     Rscript tests/reference/why.R
# which simulates a design with two between-subject factors (fixed seed) into tests/reference/data/why_two_between.csv,
# reads the other data sets and writes tests/reference/why.json.
#
# Needs R with afex, car, lme4, lmerTest, emmeans, mmrm and jsonlite (Debian: apt-get install r-cran-afex r-cran-car
# r-cran-lmertest r-cran-emmeans r-cran-jsonlite; mmrm from CRAN). Package versions go under "provenance".
#
# Data sets (one entry each in the JSON):
#   sleepstudy    lme4's sleepstudy, Reaction ~ Days + (Days | Subject); time Days (numeric), no between-subject factor
#   sleep_missing tests/reference/data/sleepstudy_missing20.csv: sleepstudy with 20% of its rows removed at random,
#                 made in Python by mm.datasets.load("sleepstudy").sample(frac=0.8, random_state=1).sort_index()
#   trial         tests/reference/data/residual_trial.csv (made by residual.R): y ~ arm * visit + base, mmrm us(visit | id);
#                 time visit (factor V1..V5), between arm; base a numeric covariate (left out of t-tests/RM-ANOVA)
#   two_between   simulated here: y ~ dose * week + sex + (week | id); time week (numeric 0, 2, 4, 8), between dose (3
#                 levels) and sex, ~15% of subjects drop out
#
# Definitions (what mixedmodels computes, written out in R):
#   ols           lm(fixed part) coefficients and SEs
#   ttest_*       the first between-subject factor's second level minus its first (t.test(x2, x1), Welch and
#                 var.equal = TRUE; oneway.test for three levels); with no between factor, the last time point minus the
#                 first (two-sample, and paired over subjects seen at both). "last": everyone observed at the last time;
#                 "completers": subjects observed at every time; "locf": each subject's last observation
#   slopes        per-subject coef(lm(y ~ t))[2] (t the time value, or the visit number for a factor), then t.test /
#                 oneway.test on them (t.test(slopes) with no between factor)
#   rm_anova      afex::aov_ez(id, y, between = the between factors, within = time, type = 3); car's
#                 summary(a$Anova, multivariate = FALSE): univariate tests, GG/HF epsilons and p-values, Mauchly
#   empirical     cor(wide least-squares residuals, use = "pairwise.complete.obs")
#   implied       cov2cor of Z G Z' + sigma^2 I (lme4) or of mmrm's VarCorr, at the scheduled times
#   icc           lmer(y ~ fixed + (1 | subject)) by REML: tau^2 / (tau^2 + sigma^2)
#   mixed         the mixed model's answer (lmerTest::contest with Satterthwaite df, mmrm::df_1d / df_md) to: the
#                 difference at the last time (L from emmeans' reference grid, equal weights, covariates at their
#                 means), and the least-squares slope through the model's mean profile, sum_k c_k mean(t_k),
#                 c_k = (t_k - mean t) / sum (t - mean t)^2

suppressPackageStartupMessages({
  library(lme4); library(lmerTest); library(afex); library(car); library(emmeans); library(mmrm); library(jsonlite)
})
options(contrasts = c("contr.treatment", "contr.poly"))

# ---------------------------------------------------------------- simulated design with two between-subject factors
set.seed(20240917)
n_id <- 60
ids <- sprintf("P%02d", seq_len(n_id))
dose <- rep(c("d0", "d1", "d2"), length.out = n_id)
sex <- rep(c("F", "F", "F", "M", "M", "M"), length.out = n_id)
weeks <- c(0, 2, 4, 8)
rows <- list()
for (i in seq_len(n_id)) {
  b0 <- rnorm(1, 0, 3); b1 <- rnorm(1, 0, 0.4)
  slope <- c(d0 = 0.2, d1 = 0.6, d2 = 1.0)[dose[i]]
  last <- if (runif(1) < 0.15) sample(2:3, 1) else 4
  for (k in seq_len(last)) {
    w <- weeks[k]
    y <- 20 + (sex[i] == "M") * 2 + b0 + (slope + b1) * w + rnorm(1, 0, 1.5)
    rows[[length(rows) + 1]] <- data.frame(id = ids[i], dose = dose[i], sex = sex[i], week = w, y = round(y, 3))
  }
}
tb <- do.call(rbind, rows)
write.csv(tb, "tests/reference/data/why_two_between.csv", row.names = FALSE)
tb <- read.csv("tests/reference/data/why_two_between.csv")

# ---------------------------------------------------------------- the naive analyses, written out
ttests <- function(x2, x1, paired_x = NULL, paired_y = NULL) {
  w <- t.test(x2, x1); p <- t.test(x2, x1, var.equal = TRUE)
  out <- list(welch = list(statistic = unname(w$statistic), df = unname(w$parameter), p_value = w$p.value,
                           estimate = unname(diff(rev(w$estimate)))),
              pooled = list(statistic = unname(p$statistic), df = unname(p$parameter), p_value = p$p.value),
              n = c(length(x1), length(x2)))
  if (!is.null(paired_x)) {
    q <- t.test(paired_x, paired_y, paired = TRUE)
    out$paired <- list(statistic = unname(q$statistic), df = unname(q$parameter), p_value = q$p.value, n = length(paired_x))
  }
  out
}
group_tests <- function(y, g) {
  lev <- sort(unique(g))
  if (length(lev) == 2) return(ttests(y[g == lev[2]], y[g == lev[1]]))
  w <- oneway.test(y ~ g); p <- oneway.test(y ~ g, var.equal = TRUE)
  list(welch = list(statistic = unname(w$statistic), num_df = unname(w$parameter[1]), den_df = unname(w$parameter[2]), p_value = w$p.value),
       pooled = list(statistic = unname(p$statistic), num_df = unname(p$parameter[1]), den_df = unname(p$parameter[2]), p_value = p$p.value),
       n = as.vector(table(g)))
}

naive <- function(d, subject, time, between, fixed, time_numeric) {
  d$.s <- as.character(d[[subject]])
  tl <- if (time_numeric) sort(unique(d[[time]])) else sort(unique(as.character(d[[time]])))
  d$.t <- match(if (time_numeric) d[[time]] else as.character(d[[time]]), tl)
  K <- length(tl)
  subj <- unique(d$.s)
  wide <- matrix(NA_real_, length(subj), K, dimnames = list(subj, as.character(tl)))
  wide[cbind(match(d$.s, subj), d$.t)] <- d$y
  complete <- rowSums(is.na(wide)) == 0
  ols <- lm(fixed, data = d)
  res <- wide; res[] <- NA
  res[cbind(match(d$.s, subj), d$.t)] <- residuals(ols)
  g <- if (length(between)) as.character(d[[between[1]]][match(subj, d$.s)]) else NULL
  last_code <- tapply(d$.t, d$.s, max)[subj]
  locf <- wide[cbind(seq_along(subj), last_code)]
  if (is.null(g)) {
    at_last <- !is.na(wide[, K]); at_first <- !is.na(wide[, 1])
    both <- at_last & at_first
    tt_last <- ttests(wide[at_last, K], wide[at_first, 1], wide[both, K], wide[both, 1])
    cb <- complete
    tt_comp <- ttests(wide[cb, K], wide[cb, 1], wide[cb, K], wide[cb, 1])
    tt_locf <- ttests(locf, wide[at_first, 1], locf[at_first], wide[at_first, 1])
  } else {
    at_last <- !is.na(wide[, K])
    tt_last <- group_tests(wide[at_last, K], g[at_last])
    tt_comp <- group_tests(wide[complete, K], g[complete])
    tt_locf <- group_tests(locf, g)
  }
  pos <- if (time_numeric) tl else seq_len(K)
  slopes <- sapply(subj, function(s) {
    e <- d[d$.s == s, ]
    if (length(unique(e$.t)) < 2) return(NA_real_)
    unname(coef(lm(e$y ~ pos[e$.t]))[2])
  })
  ok <- !is.na(slopes)
  sl <- if (is.null(g)) {
    t1 <- t.test(slopes[ok])
    list(one_sample = list(statistic = unname(t1$statistic), df = unname(t1$parameter), p_value = t1$p.value,
                           estimate = unname(t1$estimate)), n_used = sum(ok), n_dropped = sum(!ok))
  } else c(group_tests(slopes[ok], g[ok]), list(n_used = sum(ok), n_dropped = sum(!ok)))
  emp <- suppressWarnings(cor(res, use = "pairwise.complete.obs"))
  # afex: complete cases only, sum-to-zero contrasts, Type III (drops incomplete subjects with a warning)
  d$.tf <- factor(d$.t)
  a <- suppressWarnings(suppressMessages(aov_ez(".s", "y", d, between = if (length(between)) between else NULL,
                                                within = ".tf", type = 3, print.formula = FALSE)))
  s <- suppressWarnings(summary(a$Anova, multivariate = FALSE))
  uni <- s$univariate.tests
  uni <- uni[rownames(uni) != "(Intercept)", , drop = FALSE]
  rn <- gsub("\\.tf", time, rownames(uni))
  eff <- list(effect = rn, F = unname(uni[, "F value"]), num_df = unname(uni[, "num Df"]), den_df = unname(uni[, "den Df"]),
              p_value = unname(uni[, "Pr(>F)"]))
  sph <- NULL
  if (nrow(s$sphericity.tests) > 0) {
    pa <- s$pval.adjustments
    sph <- list(effect = gsub("\\.tf", time, rownames(pa)), mauchly_W = unname(s$sphericity.tests[rownames(pa), 1]),
                mauchly_p = unname(s$sphericity.tests[rownames(pa), 2]), gg_epsilon = unname(pa[, "GG eps"]),
                p_gg = unname(pa[, "Pr(>F[GG])"]), hf_epsilon = unname(pa[, "HF eps"]), p_hf = unname(pa[, "Pr(>F[HF])"]))
  }
  incomplete <- attr(a, "incomplete_cases")
  list(times = as.character(tl), n_subjects = length(subj), n_complete = sum(complete),
       ols = list(terms = names(coef(ols)), estimate = unname(coef(ols)), std_error = unname(sqrt(diag(vcov(ols))))),
       ttest_last = tt_last, ttest_completers = tt_comp, ttest_locf = tt_locf, slopes = sl,
       rm_anova = list(n_subjects_used = length(unique(a$data$long$.s)), n_subjects_dropped = length(incomplete),
                       effects = eff, sphericity = sph),
       empirical = unname(emp))
}

icc_ri <- function(fixed, subject, d) {
  m <- lmer(as.formula(paste(deparse(fixed), "+ (1 |", subject, ")")), data = d, REML = TRUE)
  vc <- as.data.frame(VarCorr(m))
  vc$vcov[1] / sum(vc$vcov)
}

implied_lmer <- function(m, times) {
  vc <- VarCorr(m)[[1]]
  Z <- cbind(1, times)[, seq_len(ncol(vc)), drop = FALSE]
  V <- Z %*% vc %*% t(Z) + sigma(m)^2 * diag(length(times))
  unname(cov2cor(V))
}

contest1 <- function(m, L) {
  r <- contest(m, matrix(L, nrow = 1), joint = FALSE, ddf = "Satterthwaite")
  list(estimate = r$Estimate, std_error = r[["Std. Error"]], df = r$df, statistic = r[["t value"]], p_value = r[["Pr(>|t|)"]])
}

slope_weights <- function(t) (t - mean(t)) / sum((t - mean(t))^2)

out <- list()

# ---------------------------------------------------------------- sleepstudy, complete and 20% missing
for (name in c("sleepstudy", "sleep_missing")) {
  d <- if (name == "sleepstudy") lme4::sleepstudy else read.csv("tests/reference/data/sleepstudy_missing20.csv")
  d$Subject <- as.character(d$Subject); d$y <- d$Reaction
  e <- naive(d, "Subject", "Days", character(0), y ~ Days, TRUE)
  m <- lmer(Reaction ~ Days + (Days | Subject), data = d, REML = TRUE)
  e$implied <- implied_lmer(m, as.numeric(e$times))
  e$icc <- icc_ri(Reaction ~ Days, "Subject", d)
  e$mixed_last <- contest1(m, c(0, max(d$Days) - min(d$Days)))
  e$mixed_slope <- contest1(m, c(0, 1))
  e$mixed_se <- unname(sqrt(diag(as.matrix(vcov(m)))))
  out[[name]] <- e
}

# ---------------------------------------------------------------- trial (mmrm, unstructured)
tr <- read.csv("tests/reference/data/residual_trial.csv")
tr$visit <- factor(tr$visit); tr$arm <- factor(tr$arm); tr$id <- factor(tr$id)
e <- naive(tr, "id", "visit", "arm", y ~ arm * visit + base, FALSE)
# mmrm's default stops ~1e-6 short of the REML optimum; BFGS with a tight tolerance reaches it (logLik -940.7580416)
fit <- mmrm(y ~ arm * visit + base + us(visit | id), data = tr, reml = TRUE,
            control = mmrm_control(optimizer = "BFGS", optimizer_control = list(reltol = 1e-14, maxit = 5000)))
e$implied <- unname(cov2cor(VarCorr(fit)))
e$icc <- icc_ri(y ~ arm * visit + base, "id", tr)
emm <- emmeans(fit, ~ arm | visit)
Lg <- emm@linfct; gr <- emm@grid
L_last <- Lg[gr$arm == "TRT" & gr$visit == "V5", ] - Lg[gr$arm == "PBO" & gr$visit == "V5", ]
r <- df_1d(fit, L_last)
e$mixed_last <- list(estimate = r$est, std_error = r$se, df = r$df, statistic = r$t_stat, p_value = r$p_val)
cw <- slope_weights(1:5)
slope_arm <- function(a) colSums(cw * Lg[gr$arm == a, ][order(gr$visit[gr$arm == a]), ])
r <- df_1d(fit, slope_arm("TRT") - slope_arm("PBO"))
e$mixed_slope <- list(estimate = r$est, std_error = r$se, df = r$df, statistic = r$t_stat, p_value = r$p_val)
e$mixed_se <- unname(sqrt(diag(vcov(fit))))
out$trial <- e

# ---------------------------------------------------------------- two between-subject factors (lmer, random slope)
tb$dose <- factor(tb$dose); tb$sex <- factor(tb$sex)
e <- naive(tb, "id", "week", c("dose", "sex"), y ~ dose * week + sex, TRUE)
m <- lmer(y ~ dose * week + sex + (week | id), data = tb, REML = TRUE)
e$implied <- implied_lmer(m, weeks)
e$icc <- icc_ri(y ~ dose * week + sex, "id", tb)
emm <- emmeans(m, ~ dose | week, at = list(week = weeks))
Lg <- emm@linfct; gr <- emm@grid
at8 <- function(lv) Lg[gr$dose == lv & gr$week == 8, ]
L <- rbind(at8("d1") - at8("d0"), at8("d2") - at8("d0"))
r <- contest(m, L, joint = TRUE, ddf = "Satterthwaite")
e$mixed_last <- list(statistic = r[["F value"]], num_df = r$NumDF, den_df = r$DenDF, p_value = r[["Pr(>F)"]])
cw <- slope_weights(weeks)
slope_dose <- function(lv) colSums(cw * Lg[gr$dose == lv, ][order(gr$week[gr$dose == lv]), ])
L <- rbind(slope_dose("d1") - slope_dose("d0"), slope_dose("d2") - slope_dose("d0"))
r <- contest(m, L, joint = TRUE, ddf = "Satterthwaite")
e$mixed_slope <- list(statistic = r[["F value"]], num_df = r$NumDF, den_df = r$DenDF, p_value = r[["Pr(>F)"]])
e$mixed_se <- unname(sqrt(diag(as.matrix(vcov(m)))))
out$two_between <- e

out$provenance <- list(R = R.version.string, afex = as.character(packageVersion("afex")), car = as.character(packageVersion("car")),
                       lme4 = as.character(packageVersion("lme4")), lmerTest = as.character(packageVersion("lmerTest")),
                       emmeans = as.character(packageVersion("emmeans")), mmrm = as.character(packageVersion("mmrm")),
                       seed = 20240917)
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, null = "null", na = "null", pretty = FALSE), "tests/reference/why.json")
