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

// Charts (a sample's curves, Levey-Jennings charts): drawn from each element's data-plot (no inline script:
// the pages' Content-Security-Policy).
(function () {
  if (typeof Plotly === "undefined") return;
  document.querySelectorAll("[data-plot]").forEach(function (el) {
    var spec = JSON.parse(el.getAttribute("data-plot"));
    Plotly.newPlot(el, spec.data, spec.layout, {displaylogo: false, responsive: true});
  });
})();

// Print buttons (labels, printed results).
document.querySelectorAll("[data-print]").forEach(function (el) {
  el.addEventListener("click", function () { window.print(); });
});
