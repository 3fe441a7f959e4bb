/* The deployed diagram in the bpmn-js navigated viewer (pan with the mouse, zoom with the wheel; the
 * bpmn.io watermark stays, as its licence asks). Everything to draw comes from the page itself: the
 * JSON in #diagram-data, rendered by the server (labels already translated). Two modes:
 *  - "procedure": per element, complaints waiting / overdue / median time as overlays and a colour
 *    scale (markers load-1..load-4, has-overdue); the side panel shows the documentation of the
 *    element under the cursor, or of the one clicked (the server rendered one hidden section each).
 *  - "complaint": one complaint's path: markers done, current, missed, deadline-open on elements,
 *    taken on sequence flows, and a "×n" badge where it passed more than once. It opens on
 *    data.focus (where the complaint is now, or the end it reached) at a zoom where the names can be
 *    read, unless the whole diagram can be read at once; "whole diagram" and "current step" buttons
 *    (labels in data.labels) switch between the two.
 * Badges sit outside their element's shape, clear of its name. #diagram gets data-state="ready" (or
 * "error") when done, for people and tests alike. */
(function () {
  'use strict';

  function readData() {
    var node = document.getElementById('diagram-data');
    return node ? JSON.parse(node.textContent) : null;
  }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) { node.className = className; }
    if (text !== undefined && text !== null) { node.textContent = String(text); }
    return node;
  }

  function fail(container, message) {
    container.setAttribute('data-state', 'error');
    var box = el('p', 'diagram-error', (container.getAttribute('data-error-text') || 'The diagram could not be shown.') + ' ' + message);
    container.appendChild(box);
  }

  function has(registry, id) { return !!registry.get(id); }

  // The smallest zoom the diagram opens at on an element: the names are about 10 px and more there. A
  // whole diagram that fits at this zoom or more opens whole.
  var READABLE_ZOOM = 0.8;
  var MARGIN = 60;          // diagram units kept around the elements opened on

  // Where a badge goes so that it never covers its element's name: outside the shape (a task's name is
  // inside it), beside its top-right corner — above it, or below it when the element's own label (an
  // event's or a gateway's name, drawn outside the shape) is above the shape. The CSS class "above"
  // lifts the badge by its own height.
  function beside(element) {
    var label = element.label;
    var labelAbove = !!label && label.y + label.height <= element.y + 1;
    return labelAbove ? { position: { bottom: -3, right: -3 }, side: 'below' }
      : { position: { top: -3, right: -3 }, side: 'above' };
  }

  function boxOf(shapes) {
    var x1 = Infinity, y1 = Infinity, x2 = -Infinity, y2 = -Infinity;
    shapes.forEach(function (s) {
      x1 = Math.min(x1, s.x); y1 = Math.min(y1, s.y);
      x2 = Math.max(x2, s.x + s.width); y2 = Math.max(y2, s.y + s.height);
    });
    return { x: x1, y: y1, width: x2 - x1, height: y2 - y1 };
  }

  // The largest zoom (at most 1) at which `box` and its margin fit the canvas.
  function fitting(outer, box) {
    return Math.min(1, outer.width / (box.width + 2 * MARGIN), outer.height / (box.height + 2 * MARGIN));
  }

  function fitAll(canvas) { return canvas.zoom('fit-viewport', 'auto'); }

  // Show the elements `ids` centred, at a zoom where their names can be read (READABLE_ZOOM or more);
  // when they are too far apart for that, the first of them. The whole diagram when it can be read at
  // once, or when none of them is drawn.
  function openOn(viewer, ids) {
    var canvas = viewer.get('canvas');
    var registry = viewer.get('elementRegistry');
    var whole = fitAll(canvas);
    var shapes = (ids || []).map(function (id) { return registry.get(id); })
      .filter(function (s) { return s && !s.waypoints; });
    var outer = canvas.viewbox().outer;
    if (!shapes.length || whole >= READABLE_ZOOM || !outer.width || !outer.height) { return whole; }
    var box = boxOf(shapes);
    var zoom = fitting(outer, box);
    if (zoom < READABLE_ZOOM) { box = boxOf(shapes.slice(0, 1)); zoom = fitting(outer, box); }
    zoom = Math.max(zoom, READABLE_ZOOM);
    var width = outer.width / zoom, height = outer.height / zoom;
    canvas.viewbox({ x: box.x + box.width / 2 - width / 2, y: box.y + box.height / 2 - height / 2,
                     width: width, height: height });
    return zoom;
  }

  // ---- procedure mode ------------------------------------------------------------------------------
  function procedure(viewer, data) {
    var canvas = viewer.get('canvas');
    var overlays = viewer.get('overlays');
    var registry = viewer.get('elementRegistry');
    var eventBus = viewer.get('eventBus');

    (data.overlays || []).forEach(function (row) {
      if (!has(registry, row.id)) { return; }
      if (row.level) { canvas.addMarker(row.id, 'load-' + row.level); }
      if (row.overdue) { canvas.addMarker(row.id, 'has-overdue'); }
      var badge = el('div', 'stat-badge' + (row.overdue ? ' stat-overdue' : ''));
      badge.setAttribute('data-testid', 'overlay-' + row.id);
      badge.setAttribute('data-waiting', row.waiting);
      badge.setAttribute('data-overdue', row.overdue);
      badge.setAttribute('data-completed', row.completed);
      var line = el('div', 'stat-now');
      line.appendChild(el('span', 'stat-waiting', row.waiting_text));
      if (row.overdue) { line.appendChild(el('span', 'stat-late', row.overdue_text)); }
      badge.appendChild(line);
      if (row.median_hours !== null && row.median_hours !== undefined) {
        badge.appendChild(el('div', 'stat-median', row.median_text));
      }
      badge.title = row.title || '';
      // Above the element (or below it when its label is above), clear of its name; readable at any
      // zoom: never drawn smaller than its natural size.
      var shape = registry.get(row.id);
      var labelAbove = !!shape.label && shape.label.y + shape.label.height <= shape.y + 1;
      badge.className += labelAbove ? ' below' : ' above';
      overlays.add(row.id, 'stats', { position: labelAbove ? { bottom: -3, left: 0 } : { top: -3, left: 0 },
                                      scale: { min: 1 }, html: badge });
    });

    var panel = document.getElementById('element-docs');
    var intro = document.getElementById('element-doc-intro');
    var selected = null;

    function show(id) {
      var found = false;
      if (panel) {
        panel.querySelectorAll('.element-doc').forEach(function (section) {
          var match = section.getAttribute('data-element-id') === id;
          section.hidden = !match;
          found = found || match;
        });
      }
      if (intro) { intro.hidden = found; }
      if (panel) { panel.setAttribute('data-showing', found ? id : ''); }
    }

    function idOf(element) {
      if (!element) { return null; }
      var target = element.labelTarget || element;
      return target.businessObject && target.businessObject.id;
    }

    function select(id) {
      if (selected && has(registry, selected)) { canvas.removeMarker(selected, 'selected'); }
      selected = id && has(registry, id) ? id : null;
      if (selected) { canvas.addMarker(selected, 'selected'); }
      show(selected);
    }

    eventBus.on('element.hover', function (event) {
      var id = idOf(event.element);
      if (id && panel && panel.querySelector('.element-doc[data-element-id="' + CSS.escape(id) + '"]')) { show(id); }
    });
    eventBus.on('element.out', function () { show(selected); });
    eventBus.on('element.click', function (event) {
      var id = idOf(event.element);
      var root = canvas.getRootElement();
      select(event.element === root ? null : id);
    });

    if (data.select) {
      select(data.select);
      var element = registry.get(data.select);
      if (element && canvas.scrollToElement) { canvas.zoom(0.9); canvas.scrollToElement(element); }
    }
  }

  // ---- complaint mode ------------------------------------------------------------------------------
  function complaint(viewer, data) {
    var canvas = viewer.get('canvas');
    var overlays = viewer.get('overlays');
    var registry = viewer.get('elementRegistry');
    var marks = data.marks || {};
    var markers = { done: 'done', current: 'current', missed: 'missed', deadline_open: 'deadline-open',
                    taken: 'taken' };
    Object.keys(markers).forEach(function (key) {
      (marks[key] || []).forEach(function (id) {
        if (has(registry, id)) { canvas.addMarker(id, markers[key]); }
      });
    });
    Object.keys(marks.counts || {}).forEach(function (id) {
      var shape = registry.get(id);
      if (!shape) { return; }
      var where = beside(shape);
      var badge = el('div', 'visit-badge ' + where.side, '\u00d7' + marks.counts[id]);
      badge.setAttribute('data-testid', 'visits-' + id);
      // Small: it grows and shrinks with the diagram down to 3/4 of its size, and no smaller.
      overlays.add(id, 'visits', { position: where.position, scale: { min: 0.75 }, html: badge });
    });
  }

  // The complaint page's controls beside the zoom buttons: the fit button named "whole diagram", and
  // one back to the focus.
  function complaintTools(container, data) {
    var labels = data.labels || {};
    var frame = container.parentNode;
    var fit = frame && frame.querySelector('[data-zoom="fit"]');
    if (!fit || !labels.whole) { return; }
    fit.textContent = labels.whole;
    fit.title = labels.whole_title || labels.whole;
    fit.setAttribute('data-testid', 'diagram-whole');
    if ((data.focus || []).length) {
      var back = el('button', 'btn btn-small', labels.focus);
      back.type = 'button';
      back.title = labels.focus_title || labels.focus;
      back.setAttribute('data-zoom', 'focus');
      back.setAttribute('data-testid', 'diagram-focus');
      fit.parentNode.insertBefore(back, fit);
    }
  }

  function start() {
    var container = document.getElementById('diagram');
    var data = readData();
    if (!container || !data) { return; }
    if (typeof window.BpmnJS !== 'function') { fail(container, '(bpmn-js is missing: run make vendor)'); return; }
    var viewer = new window.BpmnJS({ container: container });
    window.procedureViewer = viewer;
    if (data.mode === 'complaint') { complaintTools(container, data); }
    fetch(data.xml_url, { credentials: 'same-origin' })
      .then(function (response) {
        if (!response.ok) { throw new Error('HTTP ' + response.status); }
        return response.text();
      })
      .then(function (xml) { return viewer.importXML(xml); })
      .then(function () {
        if (data.mode === 'procedure') {
          fitAll(viewer.get('canvas'));
          procedure(viewer, data);
        } else {
          openOn(viewer, data.focus);
          complaint(viewer, data);
        }
        container.setAttribute('data-state', 'ready');
      })
      .catch(function (error) { fail(container, error && error.message ? error.message : String(error)); });

    document.querySelectorAll('[data-zoom]').forEach(function (button) {
      button.addEventListener('click', function () {
        var canvas = viewer.get('canvas');
        var how = button.getAttribute('data-zoom');
        if (how === 'fit') { fitAll(canvas); } else if (how === 'focus') { openOn(viewer, data.focus); } else {
          canvas.zoom(canvas.zoom() * (how === 'in' ? 1.25 : 0.8));
        }
      });
    });
    document.querySelectorAll('form[data-autosubmit] select').forEach(function (select) {
      select.addEventListener('change', function () { select.form.submit(); });
    });
  }

  if (document.readyState === 'loading') { document.addEventListener('DOMContentLoaded', start); } else { start(); }
}());
