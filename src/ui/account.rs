//! The SIP accounts behind the window, on the phone's thread: each one's password from the
//! keyring (or kept for this run when there is no keyring), its registration, and what a
//! dial through it looks like.

use super::model::AccountSummary;
use crate::driver::{self, Handle};
use crate::engine::{AccountConfig, AccountId, CallId, Command};
use crate::phone::Outgoing;
use crate::secrets::{self, SecretError};
use crate::settings::Account;
use crate::sip::auth::Credentials;
use crate::sip::transport::Destination;
use crate::sip::uri::{NameAddr, Uri};

/// One account and its registration.
#[derive(Debug, Default)]
pub(super) struct AccountLink {
    account: Option<Account>,
    password: Option<String>,
    /// The engine's id of the registration we asked for, while it stands.
    registered: Option<AccountId>,
    /// The registrar holds our binding (the last word on `registered` was a success).
    bound: bool,
    /// Where the built-in echo test answers, when it runs.
    echo: Option<Destination>,
}

/// Every enabled account, each registered on its own; and the one calls go out on.
#[derive(Debug, Default)]
pub(super) struct Accounts {
    links: Vec<AccountLink>,
    /// Dials without any account go straight to the URI through this one.
    none: AccountLink,
    /// Registration IDs are never reused, so a late answer to an old one is told apart.
    next_id: u64,
    /// The account the window chose for outgoing calls; None or gone: the first.
    outgoing: Option<String>,
    echo: Option<Destination>,
    /// Which account each call is on, by name, while it lasts.
    calls: std::collections::HashMap<CallId, String>,
    /// Bindings being removed: new registrations wait for them, since they share the
    /// Contact and a removal that lands after a new binding would take it away.
    unregistering: std::collections::HashSet<AccountId>,
    /// Accounts to register once `unregistering` is empty (by name).
    waiting: Vec<String>,
}

impl Accounts {
    /// Calls to the echo test go to this address, whichever account places them.
    pub(super) fn set_echo(&mut self, echo: Option<Destination>) {
        self.echo = echo;
        self.none.set_echo(echo);
        for link in &mut self.links {
            link.set_echo(echo);
        }
    }

    /// Takes `accounts` on (all of the file's, in its order; the enabled ones are used). An
    /// account that did not change keeps its registration and password; a changed, new or
    /// newly typed-for one (`passwords`, by account name) is taken on afresh and registers
    /// again when it is to; one that is gone or switched off unregisters first, since the
    /// new registration shares its Contact and the registrar would drop that binding after
    /// it. A password typed for a switched-off account still goes to the keyring. Returns
    /// what the user should be told.
    pub(super) async fn apply(
        &mut self,
        accounts: Vec<Account>,
        mut passwords: Vec<(String, String)>,
        handle: &Handle,
    ) -> Vec<String> {
        let mut problems = Vec::new();
        let mut old = core::mem::take(&mut self.links);
        let mut typed_for = |name: &str| {
            passwords
                .iter()
                .position(|(typed_for, _)| typed_for == name)
                .map(|at| passwords.swap_remove(at).1)
        };
        let mut wanted: Vec<(Account, Option<String>, Option<AccountLink>)> = Vec::new();
        for account in accounts {
            let typed = typed_for(&account.name);
            if !account.enabled {
                if let Some(typed) = typed {
                    let mut link = AccountLink::default();
                    link.replace(Some(account));
                    problems.extend(link.set_password(typed).await);
                }
                continue;
            }
            let kept = old
                .iter()
                .position(|link| {
                    link.account()
                        .is_some_and(|a| a.same_registration(&account))
                })
                .filter(|_| typed.is_none())
                .map(|at| old.swap_remove(at));
            wanted.push((account, typed, kept));
        }
        for mut gone in old {
            // Only a binding the registrar holds can land on a new one; a failed or
            // unanswered registration is just dropped.
            let bound = gone.bound;
            let removing = gone.unregister(handle);
            if bound {
                self.unregistering.extend(removing);
            }
        }
        self.waiting.clear();
        for (account, typed, kept) in wanted {
            if let Some(mut link) = kept {
                // Registered as before: only the rules for its calls take the new values.
                link.account = Some(account);
                self.links.push(link);
                continue;
            }
            let mut link = AccountLink::default();
            link.set_echo(self.echo);
            let problem = match typed {
                Some(typed) => {
                    link.replace(Some(account));
                    link.set_password(typed).await
                }
                None => link.adopt(Some(account)).await,
            };
            problems.extend(problem);
            if let Some(account) = link.account().filter(|a| a.register_on_start) {
                if self.unregistering.is_empty() {
                    self.next_id += 1;
                    if let Err(problem) = link.register(handle, AccountId(self.next_id)).await {
                        problems.push(problem);
                    }
                } else {
                    self.waiting.push(account.name.clone());
                }
            }
            self.links.push(link);
        }
        // A chosen account that is gone is forgotten here as in the window.
        if let Some(name) = &self.outgoing
            && !self
                .links
                .iter()
                .any(|l| l.account().is_some_and(|a| a.name == *name))
        {
            self.outgoing = None;
        }
        problems
    }

    /// What the engine said of a registration: whether the registrar holds the binding.
    pub(super) fn note_state(&mut self, id: AccountId, state: &crate::engine::RegistrationState) {
        if let Some(link) = self.links.iter_mut().find(|link| link.is_current(id)) {
            link.bound = matches!(state, crate::engine::RegistrationState::Registered { .. });
        }
    }

    /// A registration is over (removed, or given up): once no removal is pending, the
    /// accounts waiting for that register. Returns what the user should be told.
    pub(super) async fn registration_ended(
        &mut self,
        id: AccountId,
        handle: &Handle,
    ) -> Vec<String> {
        if !self.unregistering.remove(&id) || !self.unregistering.is_empty() {
            return Vec::new();
        }
        let mut problems = Vec::new();
        for name in core::mem::take(&mut self.waiting) {
            self.next_id += 1;
            let id = AccountId(self.next_id);
            if let Some(link) = self
                .links
                .iter_mut()
                .find(|link| link.account().is_some_and(|a| a.name == name))
                && let Err(problem) = link.register(handle, id).await
            {
                problems.push(problem);
            }
        }
        problems
    }

    /// What the window lists, in order.
    pub(super) fn summaries(&self) -> Vec<AccountSummary> {
        self.links
            .iter()
            .filter_map(|link| {
                let account = link.account()?;
                Some(AccountSummary {
                    name: account.name.clone(),
                    aor: account.aor.uri.to_string(),
                    registrar: account
                        .registrar
                        .as_ref()
                        .filter(|_| link.registered.is_some())
                        .map(ToString::to_string),
                })
            })
            .collect()
    }

    /// The call goes out on, or came in for, the account called `name`: a transfer it asks
    /// for is followed as that account.
    pub(super) fn note_call(&mut self, call: CallId, name: Option<String>) {
        match name {
            Some(name) => {
                self.calls.insert(call, name);
            }
            None => {
                self.calls.remove(&call);
            }
        }
    }

    /// The account a call is on (as noted), else the one calls go out on.
    pub(super) fn for_call(&self, call: CallId) -> &AccountLink {
        self.noted(call).unwrap_or_else(|| self.outgoing())
    }

    /// The account a call was noted on, if any.
    pub(super) fn noted(&self, call: CallId) -> Option<&AccountLink> {
        self.calls.get(&call).and_then(|name| self.named(name))
    }

    fn named(&self, name: &str) -> Option<&AccountLink> {
        self.links
            .iter()
            .find(|link| link.account().is_some_and(|a| a.name == name))
    }

    /// The account calls go out on from now (by name; None: the first).
    pub(super) fn choose_outgoing(&mut self, name: Option<String>) {
        self.outgoing = name;
    }

    /// The chosen account, else the first, else none (calls go straight to the URI).
    pub(super) fn outgoing(&self) -> &AccountLink {
        let chosen = self.outgoing.as_deref().and_then(|name| self.named(name));
        chosen.or_else(|| self.links.first()).unwrap_or(&self.none)
    }

    /// The name of the account whose current registration has this id.
    pub(super) fn registered_as(&self, id: AccountId) -> Option<&str> {
        self.links
            .iter()
            .find(|link| link.is_current(id))
            .and_then(AccountLink::account)
            .map(|account| account.name.as_str())
    }
}

impl AccountLink {
    /// Takes the account on and finds its password: the one written in the file, else the
    /// keyring's. Returns what the user should be told (no keyring, say).
    pub(super) async fn adopt(&mut self, account: Option<Account>) -> Option<String> {
        self.replace(account);
        let account = self.account.as_ref()?;
        if let Some(password) = &account.password {
            self.password = Some(password.clone());
            return None;
        }
        let key = account.secret_key();
        match tokio::task::spawn_blocking(move || secrets::load(&key)).await {
            Ok(Ok(password)) => {
                self.password = password;
                None
            }
            Ok(Err(error)) => Some(format!("the account's password: {error}")),
            Err(_) => None,
        }
    }

    /// Takes the account on without looking for its password (one was just typed).
    pub(super) fn replace(&mut self, account: Option<Account>) {
        self.account = account;
        self.password = None;
    }

    /// Puts a password typed in the settings in the keyring; when there is no keyring it is
    /// kept for this run, and the returned message says so.
    pub(super) async fn set_password(&mut self, password: String) -> Option<String> {
        let Some(account) = self.account.as_ref() else {
            return Some("a password needs an account (its SIP URI) first".into());
        };
        let key = account.secret_key();
        let typed = password.clone();
        self.password = Some(password);
        match tokio::task::spawn_blocking(move || secrets::store(&key, &typed)).await {
            Ok(Ok(())) => None,
            Ok(Err(error @ SecretError::Unavailable(_))) => Some(error.to_string()),
            Ok(Err(error)) => Some(format!("{error}; it is kept until Verbatim quits")),
            Err(_) => None,
        }
    }

    /// Calls to the echo test go to this address.
    pub(super) fn set_echo(&mut self, echo: Option<Destination>) {
        self.echo = echo;
    }

    pub(super) fn account(&self) -> Option<&Account> {
        self.account.as_ref()
    }

    /// The account's own recording settings (none without an account).
    pub(super) fn recording(&self) -> crate::settings::AccountRecording {
        self.account
            .as_ref()
            .map(|account| account.recording.clone())
            .unwrap_or_default()
    }

    fn credentials(&self) -> Option<Credentials> {
        let account = self.account.as_ref()?;
        let password = self.password.clone()?;
        Some(Credentials::new(account.auth_user.clone(), password))
    }

    /// Registers the account under `id` when it has a registrar.
    pub(super) async fn register(&mut self, handle: &Handle, id: AccountId) -> Result<(), String> {
        let Some(account) = self.account.as_ref() else {
            return Ok(());
        };
        let Some(registrar) = account.registrar.clone() else {
            return Ok(());
        };
        let hop = account.outbound_proxy.as_ref().unwrap_or(&registrar);
        let destination = driver::dns::first_hop(hop, account.transport)
            .await
            .map_err(|e| format!("the registrar {hop}: {e}"))?;
        let config = AccountConfig {
            aor: account.aor.clone(),
            registrar,
            destination,
            credentials: self.credentials(),
            expires: account.expires,
            route: account.outbound_proxy.clone(),
        };
        handle
            .commands
            .send(Command::Register {
                account: id,
                config,
            })
            .map_err(|_| "the phone has stopped".to_owned())?;
        self.registered = Some(id);
        self.bound = false;
        Ok(())
    }

    /// Removes the binding; returns the registration's id when there was one to remove.
    pub(super) fn unregister(&mut self, handle: &Handle) -> Option<AccountId> {
        self.bound = false;
        let account = self.registered.take()?;
        let _ = handle.commands.send(Command::Unregister { account });
        Some(account)
    }

    /// Whether an engine event about `account` is about ours (older ones are ignored).
    pub(super) fn is_current(&self, account: AccountId) -> bool {
        self.registered == Some(account)
    }

    /// What the user typed, as a URI: completed to the account's domain when there is one.
    pub(super) fn complete(&self, input: &str) -> Result<Uri, String> {
        match self.account.as_ref() {
            Some(account) => account.complete(input),
            None => crate::settings::dial_uri(input, None),
        }
    }

    /// Who we are: the account's address, or `verbatim@` this machine without an account.
    pub(super) fn identity(&self, local_ip: &str) -> NameAddr {
        match self.account.as_ref() {
            Some(account) => account.aor.clone(),
            None => NameAddr::new(Uri::sip(Some("verbatim"), local_ip, None)),
        }
    }

    /// The dial field's text as a target, and the caller identity, route, first hop and
    /// credentials of a call through the account (or straight to the URI without one).
    pub(super) async fn dial(&self, input: &str, local_ip: &str) -> Result<Outgoing, String> {
        let target = self.complete(input)?;
        let from = self.identity(local_ip);
        if crate::phone::echo::is_echo(&target) {
            let destination = self.echo.ok_or("the echo test is not running")?;
            return Ok(Outgoing {
                target,
                from,
                destination,
                route: None,
                credentials: None,
                recording: Default::default(),
                srtp: None,
            });
        }
        let Some(account) = self.account.as_ref() else {
            let destination = driver::dns::first_hop(&target, None).await?;
            return Ok(Outgoing {
                from,
                destination,
                route: None,
                credentials: None,
                target,
                recording: Default::default(),
                srtp: None,
            });
        };
        // Through the outbound proxy when there is one; else to the target's own servers
        // (RFC 3263), which for the account's domain are the provider's.
        let destination = match &account.outbound_proxy {
            Some(hop) => driver::dns::first_hop(hop, account.transport).await?,
            None => driver::dns::first_hop(&target, account.transport).await?,
        };
        Ok(Outgoing {
            from,
            destination,
            route: account.outbound_proxy.clone(),
            credentials: self.credentials(),
            target,
            recording: account.recording.clone(),
            srtp: account.srtp,
        })
    }
}
