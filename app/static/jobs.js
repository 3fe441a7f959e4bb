/* A background job's page (app/web/jobs/): while the job runs, ask /jobs/<id>.json every two seconds and
 * redraw the progress bar and its counts; once it has finished, load the page again for its result list.
 * Without script the page says the same on a reload (and reloads itself every ten seconds). */
(function () {
  'use strict';
  var box = document.querySelector('[data-job-url]');
  if (!box || !window.fetch || box.getAttribute('data-job-finished') === 'yes') { return; }
  var bar = box.querySelector('progress');
  var count = box.querySelector('[data-job-count]');
  var state = box.querySelector('[data-job-state-label]');

  function draw(p) {
    bar.max = Math.max(p.total, 1);
    bar.value = p.total ? p.done : (p.state === 'done' ? 1 : 0);
    bar.textContent = p.percent + '%';
    bar.setAttribute('aria-label', p.summary);
    count.textContent = p.summary;
    state.textContent = p.state_label;
  }

  function poll() {
    fetch(box.getAttribute('data-job-url'), {credentials: 'same-origin', headers: {'Accept': 'application/json'}})
      .then(function (r) { if (!r.ok) { throw new Error(String(r.status)); } return r.json(); })
      .then(function (p) {
        draw(p);
        if (p.finished) { window.location.reload(); } else { window.setTimeout(poll, 2000); }
      })
      .catch(function () { window.setTimeout(poll, 10000); });
  }
  window.setTimeout(poll, 2000);
}());
