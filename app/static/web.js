/* Small behaviours for every page, bound here because the Content-Security-Policy (app/security.py)
 * runs no inline script or on…= handler attribute:
 *  - a button with data-action="print" prints the page (the case file). */
(function () {
  'use strict';
  document.addEventListener('click', function (event) {
    var target = event.target.closest ? event.target.closest('[data-action="print"]') : null;
    if (target) { window.print(); }
  });
}());
