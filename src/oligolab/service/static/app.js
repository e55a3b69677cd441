// Batch page: while the analysis runs, poll its status once a second and reload when it is done.
(function () {
  var el = document.getElementById("batch-progress");
  if (!el) return;
  var url = el.getAttribute("data-status-url");
  function poll() {
    fetch(url, {credentials: "same-origin"}).then(function (r) { return r.json(); }).then(function (s) {
      el.textContent = s.status + ": " + s.progress;
      if (s.status === "queued" || s.status === "running") { setTimeout(poll, 1000); }
      else { window.location.reload(); }
    }).catch(function () { setTimeout(poll, 3000); });
  }
  setTimeout(poll, 1000);
})();

// Sample page: draw the curves from the chart's data (no inline script: the pages' Content-Security-Policy).
(function () {
  var el = document.getElementById("curves");
  if (!el || !el.getAttribute("data-plot") || typeof Plotly === "undefined") return;
  var spec = JSON.parse(el.getAttribute("data-plot"));
  Plotly.newPlot(el, spec.data, spec.layout, {displaylogo: false, responsive: true});
})();
