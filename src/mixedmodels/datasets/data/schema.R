suppressMessages(library(lme4)); library(jsonlite)
out <- list()
for (nm in c("sleepstudy","Dyestuff","Dyestuff2","Penicillin","Pastes","InstEval","cake","cbpp","grouseticks","VerbAgg")) {
  d <- get(nm)
  cols <- list()
  for (cn in names(d)) {
    x <- d[[cn]]
    if (is.factor(x)) cols[[cn]] <- list(type="factor", levels=levels(x), ordered=is.ordered(x))
    else cols[[cn]] <- list(type=if (is.integer(x)) "integer" else "numeric")
  }
  out[[nm]] <- cols
}
cat(toJSON(out, auto_unbox=TRUE, pretty=FALSE))
