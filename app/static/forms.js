/* Forms that adapt: a field with data-show-when (app.web.formrender: a JSON list of conditions, any of
 * which makes it apply) is shown, enabled and required only while its condition holds, as the user
 * chooses; otherwise it is hidden and disabled, so its stale value is not sent. Without this script every
 * field is shown with its condition in words, and the server (app.forms.validate) decides either way. */
(function () {
  'use strict';

  function currentValues(form, name) {
    var values = [];
    Array.prototype.forEach.call(form.elements, function (el) {
      if (el.name !== name || el.disabled) { return; }
      if (el.type === 'radio' || el.type === 'checkbox') {
        if (el.checked) { values.push(el.value); }
      } else if (el.value !== '') {
        values.push(el.value);
      }
    });
    return values;
  }

  function holds(when, form) {
    var values = currentValues(form, when.field);
    if (when.filled) { return values.length > 0; }
    var inside = values.some(function (v) { return when.values.indexOf(v) !== -1; });
    return when.negate ? !inside : inside;
  }

  function setApplies(field, applies) {
    field.hidden = !applies;
    var kept = field.querySelector('input[type=hidden]');
    var several = field.classList.contains('w-checkboxes');
    Array.prototype.forEach.call(field.querySelectorAll('input, select, textarea'), function (el) {
      el.disabled = !applies;
      if (el.type === 'hidden' || (el.type === 'checkbox' && several)) { return; }
      el.required = applies && !(el.type === 'file' && kept);
    });
    var star = field.querySelector('[data-when-required]');
    if (star) { star.hidden = !applies; }
  }

  function update(form) {
    var fields = form.querySelectorAll('[data-show-when]');
    // A condition may hang on another conditional field: repeat until nothing changes.
    for (var round = 0; round <= fields.length; round += 1) {
      var changed = false;
      Array.prototype.forEach.call(fields, function (field) {
        var whens = JSON.parse(field.getAttribute('data-show-when'));
        var applies = whens.some(function (when) { return holds(when, form); });
        if (applies === field.hidden || round === 0) {
          changed = changed || applies === field.hidden;
          setApplies(field, applies);
        }
      });
      if (!changed) { return; }
    }
  }

  function init() {
    Array.prototype.forEach.call(document.querySelectorAll('form'), function (form) {
      if (!form.querySelector('[data-show-when]')) { return; }
      update(form);
      form.addEventListener('change', function () { update(form); });
      form.addEventListener('input', function () { update(form); });
    });
  }

  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', init);
  } else {
    init();
  }
}());
