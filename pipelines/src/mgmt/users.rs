//! The user information table (FIG. 8) and the service order information
//! table (FIG. 26), filled by the engine from the TOML profile.
//!
//! Memory: a user costs its four strings plus two hash entries; a service
//! order costs the device id plus 8 bytes (a 64-bit set of service ids).

use std::collections::HashMap;
use std::fmt;

use super::radius::ct_eq;

/// One row of FIG. 8.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserRecord {
    pub user_id: String,
    pub password: String,
    /// Mobile device identification information (RADIUS Calling-Station-Id).
    pub device_id: String,
    pub phone: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UsersError {
    DuplicateUser(String),
    /// Two users name the same device.
    DuplicateDevice {
        device_id: String,
        users: (String, String),
    },
    DuplicateService(String),
    /// More than [`MAX_SERVICES`] services.
    TooManyServices(usize),
    /// A service order names a service that is not defined.
    UnknownService {
        device_id: String,
        service: String,
    },
    DuplicateOrder(String),
}

impl fmt::Display for UsersError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UsersError::DuplicateUser(u) => write!(f, "user {u:?} is listed twice; user ids must be unique"),
            UsersError::DuplicateDevice { device_id, users } => write!(
                f,
                "device {device_id:?} belongs to users {:?} and {:?}; a device id belongs to one user",
                users.0, users.1
            ),
            UsersError::DuplicateService(s) => write!(f, "service {s:?} is defined twice"),
            UsersError::TooManyServices(n) => {
                write!(f, "{n} services defined; at most {MAX_SERVICES} are supported")
            }
            UsersError::UnknownService { device_id, service } => write!(
                f,
                "service order of device {device_id:?} names service {service:?}, which is not defined; add it to the services list"
            ),
            UsersError::DuplicateOrder(d) => write!(f, "device {d:?} has two service orders; merge them"),
        }
    }
}

impl std::error::Error for UsersError {}

/// The user information table, indexed by user id and by device id.
#[derive(Clone, Debug, Default)]
pub struct UserTable {
    by_user: HashMap<String, UserRecord>,
    device_to_user: HashMap<String, String>,
}

impl UserTable {
    pub fn new(records: Vec<UserRecord>) -> Result<Self, UsersError> {
        let mut t = UserTable::default();
        for r in records {
            if t.by_user.contains_key(&r.user_id) {
                return Err(UsersError::DuplicateUser(r.user_id));
            }
            if let Some(other) = t.device_to_user.get(&r.device_id) {
                return Err(UsersError::DuplicateDevice {
                    device_id: r.device_id,
                    users: (other.clone(), r.user_id),
                });
            }
            t.device_to_user
                .insert(r.device_id.clone(), r.user_id.clone());
            t.by_user.insert(r.user_id.clone(), r);
        }
        Ok(t)
    }

    pub fn get(&self, user_id: &str) -> Option<&UserRecord> {
        self.by_user.get(user_id)
    }

    pub fn by_device(&self, device_id: &str) -> Option<&UserRecord> {
        self.by_user.get(self.device_to_user.get(device_id)?)
    }

    pub fn len(&self) -> usize {
        self.by_user.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_user.is_empty()
    }
}

impl UserRecord {
    /// Constant-time comparison with a presented password.
    pub fn password_matches(&self, presented: &[u8]) -> bool {
        ct_eq(self.password.as_bytes(), presented)
    }

    /// Constant-time check of a CHAP response (identifier, 16-byte
    /// response) to `challenge`.
    pub fn chap_matches(&self, ident: u8, response: &[u8], challenge: &[u8]) -> bool {
        ct_eq(
            &crate::mgmt::radius::chap_response(ident, self.password.as_bytes(), challenge),
            response,
        )
    }
}

/// At most 64 services: one bit each.
pub const MAX_SERVICES: usize = 64;

/// A service type's index in the service list (FIG. 26 columns, FIG. 27
/// rows): the same id the GW checks against a subscriber's allowed set.
pub use crate::gw::tables::ServiceId;

/// A set of services (bit i = service i allowed).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct ServiceSet(pub u64);

impl ServiceSet {
    pub fn contains(self, s: ServiceId) -> bool {
        s.0 < 64 && self.0 & (1u64 << s.0) != 0
    }

    pub fn insert(&mut self, s: ServiceId) {
        if s.0 < 64 {
            self.0 |= 1u64 << s.0;
        }
    }

    pub fn iter(self) -> impl Iterator<Item = ServiceId> {
        (0u8..64)
            .filter(move |i| self.0 & (1u64 << i) != 0)
            .map(ServiceId)
    }
}

/// One row of FIG. 26 as configured: the services (by name) the device may use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceOrder {
    pub device_id: String,
    pub allowed: Vec<String>,
}

/// The service order information table: device id → allowed services.
/// A device without a row may use no service.
#[derive(Clone, Debug, Default)]
pub struct ServiceOrderTable {
    names: Vec<String>,
    orders: HashMap<String, ServiceSet>,
}

impl ServiceOrderTable {
    /// `services[i]` is the name of `ServiceId(i)`.
    pub fn new(services: Vec<String>, orders: Vec<ServiceOrder>) -> Result<Self, UsersError> {
        if services.len() > MAX_SERVICES {
            return Err(UsersError::TooManyServices(services.len()));
        }
        for (i, s) in services.iter().enumerate() {
            if services[..i].contains(s) {
                return Err(UsersError::DuplicateService(s.clone()));
            }
        }
        let mut t = ServiceOrderTable {
            names: services,
            orders: HashMap::new(),
        };
        for o in orders {
            let mut set = ServiceSet::default();
            for name in &o.allowed {
                let Some(id) = t.service_id(name) else {
                    return Err(UsersError::UnknownService {
                        device_id: o.device_id,
                        service: name.clone(),
                    });
                };
                set.insert(id);
            }
            if t.orders.insert(o.device_id.clone(), set).is_some() {
                return Err(UsersError::DuplicateOrder(o.device_id));
            }
        }
        Ok(t)
    }

    pub fn service_id(&self, name: &str) -> Option<ServiceId> {
        self.names
            .iter()
            .position(|n| n == name)
            .map(|i| ServiceId(i as u8))
    }

    pub fn service_name(&self, id: ServiceId) -> Option<&str> {
        self.names.get(usize::from(id.0)).map(String::as_str)
    }

    /// The device's allowed services (empty if it has no row).
    pub fn services_of(&self, device_id: &str) -> ServiceSet {
        self.orders.get(device_id).copied().unwrap_or_default()
    }

    /// FIG. 25 S65–S66: OK / NG.
    pub fn allowed(&self, device_id: &str, service: ServiceId) -> bool {
        self.services_of(device_id).contains(service)
    }

    pub fn services(&self) -> &[String] {
        &self.names
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fig8() -> Vec<UserRecord> {
        (0..4)
            .map(|i| UserRecord {
                user_id: format!("E06{}8", 5 + i),
                password: format!("E06{}8aaaa", 5 + i),
                device_id: format!("F5020000{}", i + 1),
                phone: format!("907777111{}", i + 1),
            })
            .collect()
    }

    fn fig26() -> ServiceOrderTable {
        let names = ["wap", "mail", "chat", "external"]
            .map(String::from)
            .to_vec();
        let orders = (1..=4)
            .map(|i| ServiceOrder {
                device_id: format!("F5020000{i}"),
                allowed: if i == 4 {
                    vec![
                        "wap".into(),
                        "mail".into(),
                        "chat".into(),
                        "external".into(),
                    ]
                } else {
                    vec!["wap".into(), "mail".into(), "chat".into()]
                },
            })
            .collect();
        ServiceOrderTable::new(names, orders).unwrap()
    }

    #[test]
    fn fig8_lookup_by_user_and_device() {
        let t = UserTable::new(fig8()).unwrap();
        assert_eq!(t.len(), 4);
        let u = t.get("E0658").unwrap();
        assert_eq!(u.device_id, "F50200001");
        assert_eq!(u.phone, "9077771111");
        assert!(u.password_matches(b"E0658aaaa"));
        assert!(!u.password_matches(b"E0658aaab"));
        assert!(!u.password_matches(b"E0658aaa"));
        assert_eq!(t.by_device("F50200004").unwrap().user_id, "E0688");
        assert!(t.get("nobody").is_none());
        assert!(t.by_device("F59999999").is_none());
    }

    #[test]
    fn user_table_rejects_duplicates() {
        let mut v = fig8();
        v.push(v[0].clone());
        assert_eq!(
            UserTable::new(v).unwrap_err(),
            UsersError::DuplicateUser("E0658".into())
        );
        let mut v = fig8();
        let mut extra = v[1].clone();
        extra.user_id = "X".into();
        v.push(extra);
        assert!(matches!(
            UserTable::new(v).unwrap_err(),
            UsersError::DuplicateDevice { .. }
        ));
    }

    #[test]
    fn fig26_service_orders() {
        let t = fig26();
        let ext = t.service_id("external").unwrap();
        let wap = t.service_id("wap").unwrap();
        assert_eq!(t.service_name(ext), Some("external"));
        assert!(t.allowed("F50200001", wap));
        assert!(!t.allowed("F50200001", ext), "NG in FIG. 26");
        assert!(t.allowed("F50200004", ext), "OK in FIG. 26");
        assert!(!t.allowed("unknown", wap), "no row: nothing allowed");
        assert_eq!(t.services_of("F50200002").iter().count(), 3);
    }

    #[test]
    fn service_table_errors() {
        let names = vec!["wap".to_string(), "wap".to_string()];
        assert_eq!(
            ServiceOrderTable::new(names, vec![]).unwrap_err(),
            UsersError::DuplicateService("wap".into())
        );
        let names: Vec<String> = (0..65).map(|i| format!("s{i}")).collect();
        assert_eq!(
            ServiceOrderTable::new(names, vec![]).unwrap_err(),
            UsersError::TooManyServices(65)
        );
        let orders = vec![ServiceOrder {
            device_id: "d".into(),
            allowed: vec!["ftp".into()],
        }];
        assert!(matches!(
            ServiceOrderTable::new(vec!["wap".into()], orders).unwrap_err(),
            UsersError::UnknownService { .. }
        ));
        let o = ServiceOrder {
            device_id: "d".into(),
            allowed: vec![],
        };
        assert_eq!(
            ServiceOrderTable::new(vec![], vec![o.clone(), o]).unwrap_err(),
            UsersError::DuplicateOrder("d".into())
        );
    }

    #[test]
    fn service_set_bits() {
        let mut s = ServiceSet::default();
        s.insert(ServiceId(0));
        s.insert(ServiceId(63));
        s.insert(ServiceId(64)); // ignored
        assert!(s.contains(ServiceId(0)) && s.contains(ServiceId(63)));
        assert!(!s.contains(ServiceId(1)) && !s.contains(ServiceId(64)));
        assert_eq!(s.iter().collect::<Vec<_>>(), [ServiceId(0), ServiceId(63)]);
    }
}
