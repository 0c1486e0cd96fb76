//! Serde helpers shared by event payloads.

/// Serde for `Option<Option<T>>` in change sets: an absent field means
/// "unchanged", `null` means "cleared", a value means "set".
pub mod double_option {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer, T: Serialize>(v: &Option<Option<T>>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(inner) => inner.serialize(s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
        Option::<T>::deserialize(d).map(Some)
    }
}

/// Reads a required personal field that may have been erased: `null`
/// (erased) is `None`, while a missing field stays an error, as for any
/// required field (serde would otherwise read a missing `Option` as
/// `None`).
pub fn erasable<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    <Option<T> as serde::Deserialize>::deserialize(d)
}

/// Reads a personal field that may have been erased: the event store reads
/// a field sealed under a deleted key as `null` (see [`crate::personal`]),
/// which free text and lists read as empty, like a text never written.
pub fn erased_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de> + Default,
{
    <Option<T> as serde::Deserialize>::deserialize(d).map(Option::unwrap_or_default)
}
