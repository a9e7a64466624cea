/* Baton console: live incident list. When /ui/events says incidents changed, the list
   is fetched again and swapped in by htmx. No inline script: the CSP forbids it. */
(function () {
  "use strict";
  function start() {
    var list = document.getElementById("incident-list");
    if (!list || !window.EventSource || !window.htmx) { return; }
    var source = new EventSource(list.getAttribute("data-events"));
    var pending = false;
    source.addEventListener("incidents", function () {
      if (pending) { return; }
      pending = true;
      window.htmx.ajax("GET", list.getAttribute("data-src"),
                       {target: "#incident-list", swap: "innerHTML"})
        .then(function () { pending = false; }, function () { pending = false; });
    });
    window.addEventListener("pagehide", function () { source.close(); });
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
