// Central Command's one script (progressive enhancement: every page works without it).
// 1. Parts of a page marked data-live="URL" are fetched again every few seconds and replaced
//    when they changed (the server answers only that part); paused while the tab is hidden.
// 2. Filter forms marked data-autosubmit apply as soon as a choice changes.
(function () {
  'use strict';
  var last = new WeakMap();
  function refresh(el) {
    if (document.hidden || el.dataset.busy === '1') { return; }
    el.dataset.busy = '1';
    fetch(el.dataset.live, { credentials: 'same-origin', cache: 'no-store', redirect: 'manual' })
      .then(function (response) {
        if (response.type === 'opaqueredirect' || response.status === 401) {
          window.location.reload();
          return null;
        }
        if (!response.ok) { throw new Error('HTTP ' + response.status); }
        return response.text();
      })
      .then(function (html) {
        if (html === null) { return; }
        el.removeAttribute('data-stale');
        if (last.get(el) !== html) {
          last.set(el, html);
          el.innerHTML = html; // the server escaped every value in it
        }
      })
      .catch(function () { el.setAttribute('data-stale', 'true'); })
      .then(function () { el.dataset.busy = '0'; });
  }
  function start() {
    document.querySelectorAll('[data-live]').forEach(function (el) {
      var interval = parseInt(el.dataset.liveInterval, 10) || 10000;
      window.setInterval(function () { refresh(el); }, interval);
    });
    document.querySelectorAll('form[data-autosubmit] select').forEach(function (select) {
      select.addEventListener('change', function () { select.form.submit(); });
    });
  }
  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', start);
  } else {
    start();
  }
})();
