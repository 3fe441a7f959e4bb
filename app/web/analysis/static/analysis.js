/* The analysis page's charts, drawn with ECharts (app/static/vendor/echarts, make vendor) from the chart
 * data the page carries in <script type="application/json" id="analysis-charts"> (no inline script: the
 * Content-Security-Policy forbids it). Clicking a bar or point opens the complaints behind it (the same
 * link as the table row under the chart). Each chart box gets data-state="ready", or "error" with a note,
 * for people and tests alike. Also: the print button, and choosing dates clears the quarter. */
(function () {
  'use strict';

  function fail(box, message) {
    box.setAttribute('data-state', 'error');
    var note = document.createElement('p');
    note.className = 'chart-error';
    note.textContent = (box.getAttribute('data-error-text') || 'The chart could not be drawn.') + ' ' + message;
    box.appendChild(note);
  }

  // The category labels for the chart's width: all of them, level, where they fit (a laptop); on a
  // narrow screen (a phone) the dates under a column chart slant and ECharts leaves out those that would
  // overlap, and the names beside a bar chart are cut shorter.
  function categoryLabels(box, spec) {
    var width = box.clientWidth || 600;
    if (spec.horizontal) {
      return { interval: 0, rotate: 0, width: Math.min(160, Math.round(width * 0.38)), overflow: 'truncate' };
    }
    var longest = spec.categories.reduce(function (most, c) { return Math.max(most, String(c).length); }, 1);
    var fits = width / Math.max(spec.categories.length, 1) >= longest * 7 + 8;
    return fits ? { interval: 0, rotate: 0, width: 160, overflow: 'truncate' }
                : { interval: 'auto', rotate: 40, hideOverlap: true, width: 120, overflow: 'truncate' };
  }

  function option(box, spec) {
    var categoryAxis = { type: 'category', data: spec.categories, axisLabel: categoryLabels(box, spec) };
    var valueAxis = { type: 'value', minInterval: 1 };
    if (spec.horizontal) { categoryAxis.inverse = true; }
    return {
      animation: false,
      title: { text: spec.title, left: 0, textStyle: { fontSize: 14, fontWeight: 600 } },
      // Drawn on the canvas: an HTML tooltip carries style attributes, which the page's policy blocks.
      tooltip: { trigger: 'axis', axisPointer: { type: 'shadow' }, renderMode: 'richText' },
      legend: spec.series.length > 1 ? { bottom: 0, left: 0 } : undefined,
      grid: { left: 8, right: 24, top: 36, bottom: spec.series.length > 1 ? 32 : 8, containLabel: true },
      xAxis: spec.horizontal ? valueAxis : categoryAxis,
      yAxis: spec.horizontal ? categoryAxis : valueAxis,
      series: spec.series.map(function (s) {
        return { name: s.name, type: spec.kind, data: s.data, stack: spec.stacked ? 'all' : undefined,
                 itemStyle: s.color ? { color: s.color } : undefined, cursor: 'pointer',
                 label: { show: spec.categories.length <= 16, position: spec.stacked ? 'inside' : (spec.horizontal ? 'right' : 'top') } };
      })
    };
  }

  function draw(box, spec) {
    if (spec.horizontal) { box.style.height = Math.max(220, 60 + spec.categories.length * 28 * (spec.stacked ? 1 : spec.series.length)) + 'px'; }
    var chart = window.echarts.init(box, null, { renderer: 'canvas' });
    chart.setOption(option(box, spec));
    chart.on('click', function (params) {
      var link = spec.links[params.dataIndex];
      if (link) { window.location.href = link; }
    });
    window.addEventListener('resize', function () {
      chart.resize();
      var labels = { axisLabel: categoryLabels(box, spec) };
      chart.setOption(spec.horizontal ? { yAxis: labels } : { xAxis: labels });
    });
    window.addEventListener('beforeprint', function () { chart.resize(); });
    box.setAttribute('data-state', 'ready');
  }

  function drawAll() {
    var source = document.getElementById('analysis-charts');
    if (!source) { return; }
    var specs = JSON.parse(source.textContent);
    specs.forEach(function (spec) {
      var box = document.getElementById(spec.id);
      if (!box) { return; }
      if (!window.echarts) { fail(box, 'ECharts is missing (make vendor)'); return; }
      if (!spec.categories.length) { box.setAttribute('data-state', 'empty'); box.classList.add('chart-empty'); return; }
      try { draw(box, spec); } catch (err) { fail(box, err && err.message ? err.message : String(err)); }
    });
  }

  function bindControls() {
    document.querySelectorAll('[data-action="print"]').forEach(function (button) {
      button.addEventListener('click', function () { window.print(); });
    });
    var quarter = document.getElementById('quarter');
    ['from', 'to'].forEach(function (id) {
      var input = document.getElementById(id);
      if (input && quarter) { input.addEventListener('change', function () { quarter.value = ''; }); }
    });
  }

  drawAll();
  bindControls();
})();
