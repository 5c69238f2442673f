// Weekly trend of the figures embedded in the page (no request: the page carries its data).
(function () {
  "use strict";
  var figures = JSON.parse(document.getElementById("figures").textContent);
  var series = [
    ["issued", "Issued", "#2563eb"],
    ["silent", "Silent", "#9ca3af"],
    ["accepted", "Accepted", "#16a34a"],
    ["overridden", "Overridden", "#dc2626"]
  ];

  function weeks(kind) {
    var byWeek = {};
    figures.weekly.forEach(function (row) {
      if (kind && row.kind !== kind) { return; }
      var week = byWeek[row.week] || (byWeek[row.week] = {issued: 0, silent: 0, accepted: 0, overridden: 0});
      series.forEach(function (s) { week[s[0]] += row[s[0]]; });
    });
    var labels = Object.keys(byWeek).sort();
    return {labels: labels, byWeek: byWeek};
  }

  function datasets(data) {
    return series.map(function (s) {
      return {label: s[1], borderColor: s[2], backgroundColor: s[2], tension: 0.2,
              data: data.labels.map(function (week) { return data.byWeek[week][s[0]]; })};
    });
  }

  var initial = weeks("");
  var chart = new Chart(document.getElementById("trend"), {
    type: "line",
    data: {labels: initial.labels, datasets: datasets(initial)},
    options: {
      maintainAspectRatio: false, animation: false,
      interaction: {mode: "index", intersect: false},
      scales: {x: {title: {display: true, text: "week starting (Monday)"}},
               y: {beginAtZero: true, ticks: {precision: 0}, title: {display: true, text: "cards"}}}
    }
  });
  document.getElementById("trend-kind").addEventListener("change", function (event) {
    var data = weeks(event.target.value);
    chart.data.labels = data.labels;
    chart.data.datasets = datasets(data);
    chart.update();
  });
  window.cdsTrendChart = chart;
}());
