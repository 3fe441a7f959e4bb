/* The decision tables of the procedure page, read-only in the dmn-js viewer (the bpmn.io watermark
 * stays, as its licence asks). Each box [data-dmn-url] fetches its DMN file (the session's cookie, no
 * API token), draws the decision table view of it and gets data-state="ready", or "error" with a
 * message, for people and tests alike. */
(function () {
  'use strict';

  function fail(box, message) {
    box.setAttribute('data-state', 'error');
    var note = document.createElement('p');
    note.className = 'diagram-error';
    note.textContent = (box.getAttribute('data-error-text') || 'The decision table could not be shown.') + ' ' + message;
    box.appendChild(note);
  }

  function openTable(viewer) {
    var table = viewer.getViews().filter(function (view) { return view.type === 'decisionTable'; })[0];
    if (!table) { throw new Error('the file holds no decision table'); }
    return viewer.open(table);
  }

  function show(box) {
    if (typeof window.DmnJS !== 'function') { fail(box, 'dmn-js is missing (make vendor)'); return; }
    var viewer = new window.DmnJS({ container: box });
    fetch(box.getAttribute('data-dmn-url'), { credentials: 'same-origin' })
      .then(function (response) {
        if (!response.ok) { throw new Error('HTTP ' + response.status); }
        return response.text();
      })
      .then(function (xml) { return viewer.importXML(xml); })
      .then(function () { return openTable(viewer); })
      .then(function () { box.setAttribute('data-state', 'ready'); })
      .catch(function (err) { fail(box, err && err.message ? err.message : String(err)); });
  }

  document.querySelectorAll('[data-dmn-url]').forEach(show);
})();
