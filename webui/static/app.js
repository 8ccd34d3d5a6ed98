// The web client: plain JavaScript over the public API. The page's state is
// the open application's token and chat number, kept in the URL's hash
// (#<token>/<chat>) so that a link or a reload opens the same chat.
'use strict';

const $ = (id) => document.getElementById(id);
const state = { token: '', chat: 0, source: null, messages: new Map() };

// api calls the JSON API and answers the decoded body, or throws with the
// API's error message.
async function api(method, path, body) {
  const init = { method, headers: {} };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const res = await fetch(path, init);
  const data = await res.json().catch(() => null);
  if (!res.ok) {
    throw new Error((data && data.error && data.error.message) || res.status + ' ' + res.statusText);
  }
  return data;
}

// readable retries a read that may not see a create yet: reads are
// eventually consistent.
async function readable(path) {
  for (let i = 0; ; i++) {
    try { return await api('GET', path); } catch (e) {
      if (i >= 50) { throw e; }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

function showError(e) { $('error').textContent = e ? String(e.message || e) : ''; }
function appPath() { return '/applications/' + encodeURIComponent(state.token); }
function chatPath() { return appPath() + '/chats/' + state.chat; }

async function openApp(token) {
  state.token = token.trim();
  $('token').value = state.token;
  const app = await readable(appPath());
  $('app-info').textContent = app.name + ' · ' + app.chats_count + ' chats · token ' + app.token;
  localStorage.setItem('chat.token', state.token);
  await loadChats();
}

async function loadChats() {
  const chats = await api('GET', appPath() + '/chats?per_page=1000');
  const list = $('chats');
  list.replaceChildren();
  for (const c of chats) {
    const li = document.createElement('li');
    li.textContent = '#' + c.number + ' ' + (c.name || '(no name)') + ' · ' + c.messages_count;
    li.dataset.number = c.number;
    li.className = c.number === state.chat ? 'open' : '';
    li.addEventListener('click', () => openChat(c.number).catch(showError));
    list.append(li);
  }
}

// openChat follows a chat's stream from its start: its messages in the
// order they changed, then live. The browser's EventSource reconnects by
// itself and resumes with Last-Event-ID, so nothing is missed or doubled.
async function openChat(number) {
  if (state.source) { state.source.close(); }
  state.chat = number;
  state.messages = new Map();
  location.hash = state.token + '/' + number;
  const chat = await readable(chatPath());
  $('chat-title').textContent = '#' + chat.number + ' ' + (chat.name || '');
  render();
  for (const li of $('chats').children) { li.className = Number(li.dataset.number) === number ? 'open' : ''; }
  const source = new EventSource(chatPath() + '/messages/stream?after=0');
  state.source = source;
  // A create or edit comes as "message", a delete as "delete": the message
  // with deleted_at and no body, kept in its number's place.
  const change = (ev) => {
    const m = JSON.parse(ev.data);
    state.messages.set(m.number, m);
    render();
  };
  source.addEventListener('message', change);
  source.addEventListener('delete', change);
  source.addEventListener('open', () => { $('status').textContent = 'live'; });
  source.addEventListener('error', () => {
    $('status').textContent = source.readyState === EventSource.CLOSED ? 'closed' : 'reconnecting…';
  });
}

// messageItem shows a message; with actions ({ edit, remove }), a button
// for each. A deleted message shows as such, with no buttons.
function messageItem(m, actions) {
  const li = document.createElement('li');
  li.dataset.number = m.number;
  const num = document.createElement('span');
  num.className = 'number';
  num.textContent = '#' + m.number;
  const text = document.createElement('span');
  text.className = 'text';
  li.append(num, text);
  if (m.deleted_at) {
    li.className = 'deleted';
    text.textContent = 'message deleted';
    return li;
  }
  text.textContent = m.body;
  if (m.updated_at !== m.created_at) {
    const edited = document.createElement('span');
    edited.className = 'edited';
    edited.textContent = 'edited';
    li.append(edited);
  }
  for (const [name, label] of [['edit', 'Edit'], ['remove', 'Delete']]) {
    if (actions && actions[name]) {
      const button = document.createElement('button');
      button.type = 'button';
      button.textContent = label;
      button.className = name;
      button.addEventListener('click', () => actions[name](m));
      li.append(button);
    }
  }
  return li;
}

function render() {
  const list = $('messages');
  const atBottom = list.scrollTop + list.clientHeight >= list.scrollHeight - 4;
  const sorted = [...state.messages.values()].sort((a, b) => a.number - b.number);
  list.replaceChildren(...sorted.map((m) => messageItem(m, { edit: editMessage, remove: deleteMessage })));
  if (atBottom) { list.scrollTop = list.scrollHeight; }
}

async function editMessage(m) {
  const body = prompt('Edit message #' + m.number, m.body);
  if (body === null || body === m.body) { return; }
  await api('PATCH', chatPath() + '/messages/' + m.number, { body }).catch(showError);
}

// deleteMessage deletes for good; the stream's delete event then marks the
// message deleted on every page showing the chat.
async function deleteMessage(m) {
  if (!confirm('Delete message #' + m.number + '? This cannot be undone.')) { return; }
  await api('DELETE', chatPath() + '/messages/' + m.number).catch(showError);
}

async function search(q) {
  const results = $('results');
  if (!q) { results.hidden = true; return; }
  const found = await api('GET', chatPath() + '/messages/search?q=' + encodeURIComponent(q) + '&per_page=100');
  results.replaceChildren(...found.map((m) => messageItem(m)));
  if (found.length === 0) {
    const li = document.createElement('li');
    li.textContent = 'No message matches.';
    results.append(li);
  }
  results.hidden = false;
}

function on(id, handler) {
  $(id).addEventListener('submit', (ev) => {
    ev.preventDefault();
    showError(null);
    Promise.resolve(handler(ev.target)).catch(showError);
  });
}

on('open-app', () => openApp($('token').value));
on('create-app', async () => {
  const app = await api('POST', '/applications', { name: $('app-name').value });
  $('app-name').value = '';
  await openApp(app.token);
});
on('create-chat', async () => {
  if (!state.token) { throw new Error('open or create an application first'); }
  const name = $('chat-name').value;
  const chat = await api('POST', appPath() + '/chats', name ? { name } : undefined);
  $('chat-name').value = '';
  await openChat(chat.number);
  await loadChats();
});
on('post', async () => {
  if (!state.chat) { throw new Error('open or create a chat first'); }
  const body = $('body').value;
  await api('POST', chatPath() + '/messages', { body });
  $('body').value = '';
});
on('search', () => search($('q').value.trim()));
$('clear-search').addEventListener('click', () => { $('q').value = ''; $('results').hidden = true; });
$('body').addEventListener('keydown', (ev) => {
  if (ev.key === 'Enter' && !ev.shiftKey) { ev.preventDefault(); $('send').click(); }
});

// Open what the hash names, or the last application used.
(async () => {
  const [token, chat] = location.hash.slice(1).split('/');
  const saved = token || localStorage.getItem('chat.token') || '';
  if (!saved) { return; }
  await openApp(saved);
  if (chat) { await openChat(Number(chat)); }
})().catch(showError);
