// The page's entry: the compare view (?compare=..., ?sweep=...: js/compare/view.js) or the single
// view (js/single.js), each loaded with only the modules it uses (the server lists them ahead in
// the page: api/pages.py).

import { compareAsked } from "./compare/address.js";
import { notify } from "./notify.js";
import { plotlyReady } from "./vendor.js";

plotlyReady.then((Plotly) => {
  if (!Plotly) notify("plotly.js did not load (/vendor/plotly.min.js): the charts cannot be drawn", "error", 60_000);
});

if (compareAsked()) import("./compare/view.js").then((view) => view.startCompare());
else import("./single.js").then((single) => single.startSingle());
