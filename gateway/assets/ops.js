// The operators' dashboard: draws the charts (uPlot, served by the gateway) and refreshes the
// page in place every few seconds, keeping the operator's place: the scroll position, which
// attempt histories are open, and anything being typed (the refresh only replaces the
// elements marked data-live).
"use strict";

(function () {
  const seconds = Number(document.body.dataset.refreshSeconds || "5");
  let charts = [];

  function drawCharts() {
    const data = document.getElementById("series");
    const grid = document.getElementById("chart-grid");
    if (!data || !grid || typeof uPlot === "undefined") return;
    const series = JSON.parse(data.textContent);
    charts.forEach((c) => c.destroy());
    charts = [];
    grid.textContent = "";
    // Times of day in Shanghai, whatever the operator's machine is set to.
    const clock = new Intl.DateTimeFormat("en-GB", {
      timeZone: "Asia/Shanghai", hour: "2-digit", minute: "2-digit", hour12: false,
    });
    for (const chart of series.charts) {
      const figure = document.createElement("figure");
      figure.dataset.chart = chart.bureau;
      const caption = document.createElement("figcaption");
      caption.textContent = chart.name;
      figure.appendChild(caption);
      grid.appendChild(figure);
      const width = Math.max(240, figure.clientWidth - 18);
      const options = {
        width: width,
        height: 150,
        scales: { x: { time: true }, n: { auto: true, range: (u, min, max) => [0, Math.max(1, max)] },
                  b: { auto: true, range: (u, min, max) => [0, Math.max(1, max)] } },
        axes: [
          { values: (u, ticks) => ticks.map((t) => clock.format(new Date(t * 1000))) },
          { scale: "n", size: 52 },
          { scale: "b", side: 1, size: 44, grid: { show: false } },
        ],
        series: [
          { value: (u, t) => t == null ? "" : clock.format(new Date(t * 1000)) },
          { label: series.labels.received, scale: "n", stroke: "#2563eb", width: 1.5 },
          { label: series.labels.delivered, scale: "n", stroke: "#16a34a", width: 1.5 },
          { label: series.labels.failed, scale: "n", stroke: "#dc2626", width: 1.5 },
          { label: series.labels.backlog, scale: "b", stroke: "#a16207", width: 1, dash: [4, 3] },
        ],
        legend: { live: false },
        cursor: { drag: { x: false, y: false } },
      };
      const rows = [chart.minutes, chart.received, chart.delivered, chart.failed, chart.backlog];
      charts.push(new uPlot(options, rows, figure));
    }
  }

  async function refresh() {
    try {
      const response = await fetch(window.location.href, {
        credentials: "same-origin",
        headers: { "X-Ops-Refresh": "1" },
        cache: "no-store",
      });
      if (!response.ok) return;
      const fresh = new DOMParser().parseFromString(await response.text(), "text/html");
      const open = new Set(
        Array.from(document.querySelectorAll("details[open]")).map((d) => d.id)
      );
      let seriesChanged = false;
      for (const live of fresh.querySelectorAll("[data-live]")) {
        const current = live.id && document.getElementById(live.id);
        if (!current) continue;
        if (live.tagName === "SCRIPT") {
          if (current.textContent !== live.textContent) {
            current.textContent = live.textContent;
            seriesChanged = true;
          }
        } else {
          current.innerHTML = live.innerHTML;
        }
      }
      for (const id of open) {
        const details = id && document.getElementById(id);
        if (details) details.open = true;
      }
      if (seriesChanged) drawCharts();
      document.body.dataset.refreshed = String(Date.now());
    } catch (error) {
      // The node may be restarting: the next refresh tries again.
      console.warn("dashboard refresh failed", error);
    }
  }

  drawCharts();
  let resized;
  window.addEventListener("resize", () => {
    clearTimeout(resized);
    resized = setTimeout(drawCharts, 200);
  });
  setInterval(refresh, seconds * 1000);
})();
