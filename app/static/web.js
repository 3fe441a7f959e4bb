/* Small behaviours for every page, bound here because the Content-Security-Policy (app/security.py)
 * runs no inline script or on…= handler attribute:
 *  - a button with data-action="print" prints the page (the case file);
 *  - on a narrow screen the top bar's menu (a checkbox and its label, working without script) closes
 *    on Escape and when a click lands outside it. */
(function () {
  'use strict';
  document.addEventListener('click', function (event) {
    var target = event.target.closest ? event.target.closest('[data-action="print"]') : null;
    if (target) { window.print(); }
    var menu = document.getElementById('menu-toggle');
    if (menu && menu.checked && event.target.closest && !event.target.closest('.topbar')) { menu.checked = false; }
  });
  document.addEventListener('keydown', function (event) {
    var menu = document.getElementById('menu-toggle');
    if (event.key === 'Escape' && menu && menu.checked) {
      menu.checked = false;
      menu.focus();
    }
  });
}());
