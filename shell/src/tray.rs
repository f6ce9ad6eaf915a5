//! The tray icon: the state as a dot, when the session ends, Show window,
//! Sign out and Quit. (The notifications are [`crate::notices`]: they do
//! not need a tray.)

use crate::backend::Backend;
use session_core::view::Tone;
use session_core::SessionView;
use std::sync::{Arc, Mutex};
use tauri::image::Image;
use tauri::menu::{Menu, MenuItem, PredefinedMenuItem};
use tauri::tray::{TrayIcon, TrayIconBuilder};
use tauri::{AppHandle, Manager, Runtime};

/// The tray's status line for a view ([`SessionView::status_line`]: the
/// engine's headline, and when the session really ends, as the window and
/// `sessionctl status` say). No seconds: the line is redrawn twice a minute.
pub fn status_line(view: &SessionView, now: chrono::DateTime<chrono::Utc>) -> String {
    view.status_line(now)
}

/// The colour of the tray icon's state dot: green while the session is
/// fine, amber while the app works on it (offline, retrying, signing in),
/// red when renewal stopped or the session ended other than by the person;
/// no dot when signed out.
pub fn dot_colour(tone: Tone) -> Option<[u8; 3]> {
    match tone {
        Tone::Good => Some([0x1f, 0x9d, 0x55]),
        Tone::Attention => Some([0xe8, 0xa3, 0x00]),
        Tone::Bad => Some([0xd0, 0x2b, 0x3a]),
        Tone::Neutral => None,
    }
}

/// The app's icon with the state dot for `tone` in its lower right
/// quarter, ringed in white so it shows on dark and light panels alike.
pub fn icon_for(base: &Image<'_>, tone: Tone) -> Image<'static> {
    let (w, h) = (base.width(), base.height());
    let mut rgba = base.rgba().to_vec();
    if let Some([r, g, b]) = dot_colour(tone) {
        let radius = w.min(h) as f32 * 0.22;
        let (cx, cy) = (w as f32 - radius - 1.0, h as f32 - radius - 1.0);
        for y in 0..h {
            for x in 0..w {
                let d = ((x as f32 + 0.5 - cx).powi(2) + (y as f32 + 0.5 - cy).powi(2)).sqrt();
                let px = if d <= radius * 0.78 {
                    [r, g, b, 255]
                } else if d <= radius {
                    [255, 255, 255, 255]
                } else {
                    continue;
                };
                let i = ((y * w + x) * 4) as usize;
                rgba[i..i + 4].copy_from_slice(&px);
            }
        }
    }
    Image::new_owned(rgba, w, h)
}

struct TrayState<R: Runtime> {
    icon: TrayIcon<R>,
    /// The app's own icon, and the tone its dot shows now.
    base: Image<'static>,
    tone: Mutex<Option<Tone>>,
    /// The menu's items, built again when profiles are added or removed.
    items: Mutex<Items<R>>,
}

/// The menu items that change.
struct Items<R: Runtime> {
    /// Each profile's status line.
    status: Vec<(String, MenuItem<R>)>,
    sign_out: MenuItem<R>,
    /// "Sign out of NAME" per profile, when there are several.
    sign_out_each: Vec<(String, MenuItem<R>)>,
    sign_out_all: MenuItem<R>,
    /// What each item shows now (text, enabled), by item id.
    said: std::collections::HashMap<String, Said>,
}

/// A menu item's text (for those whose text changes) and enabled state.
type Said = (Option<String>, Option<bool>);

/// Give `item` this text (when one is given) and enabled state, only where
/// they changed (`said`): each change is a trip to the main thread (the
/// menu is GTK's), and the twice-a-minute look at every profile would
/// otherwise wake it twice per profile for nothing (the desktop bench's
/// ten-profile figure).
fn show<R: Runtime>(
    said: &mut std::collections::HashMap<String, Said>,
    item: &MenuItem<R>,
    text: Option<String>,
    enabled: bool,
) {
    {
        let shown = said.entry(item.id().0.clone()).or_default();
        if let Some(text) = text {
            if shown.0.as_ref() != Some(&text) {
                let _ = item.set_text(&text);
                shown.0 = Some(text);
            }
        }
        if shown.1 != Some(enabled) {
            let _ = item.set_enabled(enabled);
            shown.1 = Some(enabled);
        }
    }
}

/// The menu for `backend`'s profiles, and its items that change.
fn menu<R: Runtime>(app: &AppHandle<R>, backend: &Arc<Backend>) -> tauri::Result<(Menu<R>, Items<R>)> {
    let views = backend.views();
    let now = chrono::Utc::now();
    // One line per profile: each session's state and end, side by side.
    let status = views
        .iter()
        .map(|v| {
            MenuItem::with_id(
                app,
                format!("status:{}", v.profile),
                status_line(v, now),
                false,
                None::<&str>,
            )
            .map(|item| (v.profile.clone(), item))
        })
        .collect::<tauri::Result<Vec<_>>>()?;
    // With several profiles, each can be signed out of here.
    let sign_out_each = match views.len() > 1 {
        true => views
            .iter()
            .map(|v| {
                MenuItem::with_id(
                    app,
                    format!("sign_out:{}", v.profile),
                    format!("Sign out of {}", v.profile),
                    v.state.has_session(),
                    None::<&str>,
                )
                .map(|item| (v.profile.clone(), item))
            })
            .collect::<tauri::Result<Vec<_>>>()?,
        false => Vec::new(),
    };
    let show_window = MenuItem::with_id(app, "show", "Show window", true, None::<&str>)?;
    let selected = backend.view();
    let sign_out = MenuItem::with_id(app, "sign_out", "Sign out", selected.state.has_session(), None::<&str>)?;
    let sign_out_all = MenuItem::with_id(
        app,
        "sign_out_all",
        "Sign out everywhere",
        signed_in(&views) > 1,
        None::<&str>,
    )?;
    let quit = MenuItem::with_id(app, "quit", "Quit", true, None::<&str>)?;
    let separator = PredefinedMenuItem::separator(app)?;
    let mut items: Vec<&dyn tauri::menu::IsMenuItem<R>> = status
        .iter()
        .map(|(_, item)| item as &dyn tauri::menu::IsMenuItem<R>)
        .collect();
    items.extend([&separator as &dyn tauri::menu::IsMenuItem<R>, &show_window, &sign_out]);
    items.extend(
        sign_out_each
            .iter()
            .map(|(_, item)| item as &dyn tauri::menu::IsMenuItem<R>),
    );
    items.extend([&sign_out_all as &dyn tauri::menu::IsMenuItem<R>, &quit]);
    let menu = Menu::with_items(app, &items)?;
    // What each item shows from the start, so that only changes go to the
    // main thread.
    let mut said = std::collections::HashMap::new();
    for ((_, item), v) in status.iter().zip(&views) {
        said.insert(item.id().0.clone(), (Some(status_line(v, now)), Some(false)));
    }
    for ((_, item), v) in sign_out_each.iter().zip(&views) {
        said.insert(item.id().0.clone(), (None, Some(v.state.has_session())));
    }
    said.insert(sign_out.id().0.clone(), (None, Some(selected.state.has_session())));
    said.insert(sign_out_all.id().0.clone(), (None, Some(signed_in(&views) > 1)));
    Ok((
        menu,
        Items {
            status,
            sign_out,
            sign_out_each,
            sign_out_all,
            said,
        },
    ))
}

/// The menu again, after a profile was added or removed in the window.
pub fn rebuild<R: Runtime>(app: &AppHandle<R>, backend: &Arc<Backend>) {
    let Some(tray) = app.try_state::<TrayState<R>>() else {
        return;
    };
    match menu(app, backend) {
        Ok((menu, items)) => {
            let _ = tray.icon.set_menu(Some(menu));
            *tray.items.lock().unwrap_or_else(|e| e.into_inner()) = items;
        }
        Err(e) => tracing::warn!("the tray's menu was not rebuilt: {e}"),
    }
    update(app, &backend.views());
}

/// Create the tray icon with its menu.
pub fn create<R: Runtime>(app: &AppHandle<R>, backend: &Arc<Backend>) -> tauri::Result<()> {
    let views = backend.views();
    let (menu, items) = menu(app, backend)?;
    let for_menu = backend.clone();
    let mut tray = TrayIconBuilder::with_id("main")
        .menu(&menu)
        .tooltip("Session Manager")
        .on_menu_event(move |app, event| match event.id().as_ref() {
            "show" => {
                crate::show_window(app);
            }
            "sign_out" => {
                let backend = for_menu.clone();
                tauri::async_runtime::spawn(async move {
                    let _ = backend.sign_out().await;
                });
            }
            "sign_out_all" => {
                let backend = for_menu.clone();
                tauri::async_runtime::spawn(async move {
                    let _ = backend.sign_out_everywhere().await;
                });
            }
            "quit" => app.exit(0),
            other => {
                if let Some(profile) = other.strip_prefix("sign_out:") {
                    let (backend, profile) = (for_menu.clone(), profile.to_owned());
                    tauri::async_runtime::spawn(async move {
                        let _ = backend.sign_out_of(&profile).await;
                    });
                }
            }
        });
    let base = app
        .default_window_icon()
        .map(|i| i.clone().to_owned())
        .unwrap_or_else(|| Image::new_owned(vec![0; 4 * 16 * 16], 16, 16));
    let tone = worst_tone(&views);
    tray = tray.icon(icon_for(&base, tone));
    let icon = tray.build(app)?;
    app.manage(TrayState {
        icon,
        base,
        tone: Mutex::new(Some(tone)),
        items: Mutex::new(items),
    });
    Ok(())
}

/// How many of `views` have a session.
fn signed_in(views: &[SessionView]) -> usize {
    views.iter().filter(|v| v.state.has_session()).count()
}

/// The icon's dot for several sessions: the one that most needs the
/// person (ended or failing over attention over fine); none when no
/// profile has anything to say.
pub fn worst_tone(views: &[SessionView]) -> Tone {
    let rank = |t: Tone| match t {
        Tone::Neutral => 0,
        Tone::Good => 1,
        Tone::Attention => 2,
        Tone::Bad => 3,
    };
    views
        .iter()
        .map(|v| v.headline.tone)
        .max_by_key(|t| rank(*t))
        .unwrap_or(Tone::Neutral)
}

/// Whether the tray icon was made (a hidden window can be shown from it).
pub fn exists<R: Runtime>(app: &AppHandle<R>) -> bool {
    app.try_state::<TrayState<R>>().is_some()
}

/// Show every profile's session in the tray (its line, the dot of the one
/// that most needs the person, Sign out for the profile the window shows,
/// Sign out everywhere), if there is a tray.
pub fn update<R: Runtime>(app: &AppHandle<R>, views: &[SessionView]) {
    let Some(tray) = app.try_state::<TrayState<R>>() else {
        return;
    };
    let now = chrono::Utc::now();
    let mut items = tray.items.lock().unwrap_or_else(|e| e.into_inner());
    let Items {
        status,
        sign_out,
        sign_out_each,
        sign_out_all,
        said,
    } = &mut *items;
    for view in views {
        if let Some((_, item)) = status.iter().find(|(p, _)| *p == view.profile) {
            show(said, item, Some(status_line(view, now)), false);
        }
        if let Some((_, item)) = sign_out_each.iter().find(|(p, _)| *p == view.profile) {
            show(said, item, None, view.state.has_session());
        }
    }
    let tone = worst_tone(views);
    let mut shown = tray.tone.lock().unwrap_or_else(|e| e.into_inner());
    if *shown != Some(tone) {
        *shown = Some(tone);
        let _ = tray.icon.set_icon(Some(icon_for(&tray.base, tone)));
    }
    drop(shown);
    let selected = app
        .try_state::<crate::Started>()
        .and_then(|s| s.ready())
        .map(|b| b.view().state.has_session());
    show(said, sign_out, None, selected.unwrap_or(false));
    show(said, sign_out_all, None, signed_in(views) > 1);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_icon_shows_the_state_as_a_dot_and_nothing_when_signed_out() {
        let base = Image::new_owned(vec![10; 4 * 32 * 32], 32, 32);
        let at = |img: &Image<'_>, x: u32, y: u32| {
            let i = ((y * img.width() + x) * 4) as usize;
            [img.rgba()[i], img.rgba()[i + 1], img.rgba()[i + 2]]
        };
        // The dot's centre, near the lower right corner.
        let (cx, cy) = (32 - 8, 32 - 8);
        for tone in [Tone::Good, Tone::Attention, Tone::Bad] {
            let icon = icon_for(&base, tone);
            assert_eq!(Some(at(&icon, cx, cy)), dot_colour(tone), "{tone:?}");
            assert_eq!(at(&icon, 2, 2), [10, 10, 10], "the rest of the icon is the app's");
        }
        assert_eq!(icon_for(&base, Tone::Neutral).rgba(), base.rgba());
        let colours: std::collections::HashSet<_> = [Tone::Good, Tone::Attention, Tone::Bad]
            .into_iter()
            .map(dot_colour)
            .collect();
        assert_eq!(colours.len(), 3, "each state its own colour");
    }

    #[test]
    fn with_several_sessions_the_dot_is_the_one_that_most_needs_the_person() {
        let view = |tone: Tone| {
            let mut v = crate::backend::tests::view(session_core::Phase::Active, 60, Some(true), false);
            v.headline.tone = tone;
            v
        };
        let all = |tones: &[Tone]| worst_tone(&tones.iter().map(|t| view(*t)).collect::<Vec<_>>());
        assert_eq!(all(&[]), Tone::Neutral);
        assert_eq!(all(&[Tone::Neutral, Tone::Good]), Tone::Good);
        assert_eq!(all(&[Tone::Good, Tone::Attention, Tone::Neutral]), Tone::Attention);
        assert_eq!(all(&[Tone::Attention, Tone::Bad, Tone::Good]), Tone::Bad);
    }
}
