//! Boilerplate shared by the workspace's name-like enums.

/// Defines `as_str` on a field-less enum from a `Variant => "name"` table and a [`Display`](std::fmt::Display)
/// that writes that name.
///
/// Used by `AuthStatus` here, `StorageMode` in storage and `ErrorCode` in providers, so that the name
/// table is written once and `Display` can never drift from it. The doc comment and visibility of
/// `as_str` are given by the caller; the function is always `const`.
#[doc(hidden)]
#[macro_export]
macro_rules! display_as_str {
    (
        $ty:ty {
            $(#[$meta:meta])*
            $vis:vis fn as_str;
            $($variant:ident => $name:literal),+ $(,)?
        }
    ) => {
        impl $ty {
            $(#[$meta])*
            $vis const fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $name,)+
                }
            }
        }

        impl ::std::fmt::Display for $ty {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

/// Defines by-value builder setters: `fn name(arg: Type) => field = value;` becomes
/// `fn name(mut self, arg: Type) -> Self { self.field = value; self }`, with the caller's doc
/// comment, attributes (e.g. `#[must_use]`) and visibility.
///
/// Used by the builders of callback-server and providers, so each setter is the one line that
/// differs (the field and how the argument becomes its value).
#[doc(hidden)]
#[macro_export]
macro_rules! builder_setters {
    (
        $(
            $(#[$meta:meta])*
            $vis:vis fn $name:ident($arg:ident: $ty:ty) => $field:ident = $value:expr;
        )+
    ) => {
        $(
            $(#[$meta])*
            $vis fn $name(mut self, $arg: $ty) -> Self {
                self.$field = $value;
                self
            }
        )+
    };
}
