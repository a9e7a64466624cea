/* Baton console: live incident list. When /ui/events says incidents changed, the list
   is fetched again and swapped in by htmx. No inline script: the CSP forbids it. */
(function () {
  "use strict";
  function start() {
    var list = document.getElementById("incident-list");
    if (!list || !window.EventSource || !window.htmx) { return; }
    var source = new EventSource(list.getAttribute("data-events"));
    var pending = false, again = false;
    function refresh() {
      if (pending) { again = true; return; }  // once more when this one is done
      pending = true;
      var done = function () {
        pending = false;
        if (again) { again = false; refresh(); }
      };
      window.htmx.ajax("GET", list.getAttribute("data-src"),
                       {target: "#incident-list", swap: "innerHTML"}).then(done, done);
    }
    source.addEventListener("incidents", refresh);
    // Once connected (and after every reconnect): whatever changed since the page was
    // rendered and before the stream listened.
    source.addEventListener("open", refresh);
    window.addEventListener("pagehide", function () { source.close(); });
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
