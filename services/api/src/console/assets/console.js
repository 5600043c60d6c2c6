/* global document, window, EventSource */
// The console's only script: keeps the inbox live. The server sends a `decision` event on its tenant's decision
// stream; the inbox then fetches its items again (server-rendered, escaped HTML) and swaps them in. No reload.
(function () {
  'use strict';
  var inbox = document.getElementById('inbox');
  if (!inbox || !window.EventSource) return;
  var status = document.getElementById('live-status');
  var pending = false;
  function refresh() {
    if (pending) return;
    pending = true;
    setTimeout(function () {
      fetch(inbox.getAttribute('data-live-src'), {
        credentials: 'same-origin',
        headers: { accept: 'text/html' },
      })
        .then(function (response) {
          if (response.redirected || !response.ok) throw new Error('status ' + response.status);
          return response.text();
        })
        .then(function (text) {
          inbox.innerHTML = text;
          inbox.setAttribute('data-refreshed', String(Date.now()));
        })
        .catch(function () {
          if (status) status.textContent = 'Live updates paused: reload the page.';
        })
        .then(function () {
          pending = false;
        });
    }, 150);
  }
  var source = new EventSource(inbox.getAttribute('data-live-events'));
  source.addEventListener('decision', refresh);
  var opened = false;
  source.addEventListener('open', function () {
    if (status) status.textContent = 'Live: updates as the supervisor decides.';
    inbox.setAttribute('data-live', 'connected');
    // A reconnect may have missed decisions: catch up once.
    if (opened) refresh();
    opened = true;
  });
})();
