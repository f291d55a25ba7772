//! WMI over COM (the `windows` crate): connect to a namespace with packet privacy, run a WQL
//! query for named properties, call a method without parameters on every instance of a class.
//! Values become `value::Value`, typed by their CIM type (WMI hands `uint64` over as text and
//! `uint32` as a signed `VT_I4`; both are read back as the numbers they are).

use windows::Win32::Foundation::RPC_E_TOO_LATE;
use windows::Win32::System::Com::{
    CLSCTX_INPROC_SERVER, COINIT_MULTITHREADED, CoCreateInstance, CoInitializeEx,
    CoInitializeSecurity, CoSetProxyBlanket, CoUninitialize, EOAC_NONE,
    RPC_C_AUTHN_LEVEL_PKT_PRIVACY, RPC_C_IMP_LEVEL_IMPERSONATE,
};
use windows::Win32::System::Rpc::{RPC_C_AUTHN_WINNT, RPC_C_AUTHZ_NONE};
use windows::Win32::System::Variant::{
    VARIANT, VT_ARRAY, VT_BOOL, VT_BSTR, VT_EMPTY, VT_I1, VT_I2, VT_I4, VT_I8, VT_INT, VT_NULL,
    VT_UI1, VT_UI2, VT_UI4, VT_UI8, VT_UINT, VariantClear,
};
use windows::Win32::System::Wmi::{
    CIM_SINT64, CIM_UINT8, CIM_UINT16, CIM_UINT32, CIM_UINT64, IWbemClassObject, IWbemLocator,
    IWbemServices, WBEM_FLAG_CONNECT_USE_MAX_WAIT, WBEM_FLAG_FORWARD_ONLY,
    WBEM_FLAG_RETURN_IMMEDIATELY, WBEM_INFINITE, WbemLocator,
};
use windows::core::{BSTR, HSTRING, PCWSTR};

use crate::value::{Instance, SourceError, Value};

/// COM for this thread and a WMI locator; dropping it releases both.
pub(crate) struct Wmi {
    locator: Option<IWbemLocator>,
    uninitialize: bool,
}

impl Wmi {
    /// Initialises COM (multithreaded) on this thread and creates the WMI locator.
    pub(crate) fn new() -> Result<Wmi, SourceError> {
        // SAFETY: no reserved pointer is passed; the matching CoUninitialize is in Drop, and
        // only when this call initialised COM (S_OK or S_FALSE), not on RPC_E_CHANGED_MODE.
        let initialised = unsafe { CoInitializeEx(None, COINIT_MULTITHREADED) };
        let mut wmi = Wmi {
            locator: None,
            uninitialize: initialised.is_ok(),
        };
        // SAFETY: every pointer argument is None (defaults); called once per process, and a
        // second call (RPC_E_TOO_LATE) leaves the first settings, which is fine.
        let security = unsafe {
            CoInitializeSecurity(
                None,
                -1,
                None,
                None,
                RPC_C_AUTHN_LEVEL_PKT_PRIVACY,
                RPC_C_IMP_LEVEL_IMPERSONATE,
                None,
                EOAC_NONE,
                None,
            )
        };
        if let Err(err) = security
            && err.code() != RPC_E_TOO_LATE
        {
            return Err(com_error("initialising COM security", &err));
        }
        // SAFETY: WbemLocator is the documented CLSID for IWbemLocator, created in process.
        let locator: IWbemLocator =
            unsafe { CoCreateInstance(&WbemLocator, None, CLSCTX_INPROC_SERVER) }
                .map_err(|err| com_error("creating the WMI locator", &err))?;
        wmi.locator = Some(locator);
        Ok(wmi)
    }

    /// `SELECT <properties> FROM <class>` in `namespace`.
    pub(crate) fn query(
        &self,
        namespace: &str,
        class: &str,
        properties: &[&str],
    ) -> Result<Vec<Instance>, SourceError> {
        let services = self.connect(namespace)?;
        let wql = format!("SELECT {} FROM {class}", properties.join(", "));
        let mut out = Vec::new();
        for object in enumerate(&services, &wql, class)? {
            out.push(properties_of(&object, properties, class)?);
        }
        Ok(out)
    }

    /// Calls `method` (no input parameters) on every instance of `class`: per instance, the
    /// listed out-parameters plus the instance's `key` property.
    pub(crate) fn call_each(
        &self,
        namespace: &str,
        class: &str,
        method: &str,
        key: &str,
        out: &[&str],
    ) -> Result<Vec<Instance>, SourceError> {
        let services = self.connect(namespace)?;
        let wql = format!("SELECT __PATH, {key} FROM {class}");
        let mut results = Vec::new();
        for object in enumerate(&services, &wql, class)? {
            let header = properties_of(&object, &["__PATH", key], class)?;
            let Some(Value::Text(path)) = header.get("__PATH") else {
                return Err(SourceError {
                    code: None,
                    message: format!("an instance of {class} has no __PATH"),
                });
            };
            let mut output: Option<IWbemClassObject> = None;
            // SAFETY: the BSTRs live across the call; `output` receives an owned reference
            // (released when dropped); no context, no input object, synchronous call.
            unsafe {
                services.ExecMethod(
                    &BSTR::from(path.as_str()),
                    &BSTR::from(method),
                    Default::default(),
                    None,
                    None,
                    Some(&mut output),
                    None,
                )
            }
            .map_err(|err| com_error(&format!("calling {class}.{method}()"), &err))?;
            let Some(output) = output else {
                return Err(SourceError {
                    code: None,
                    message: format!("{class}.{method}() returned no out-parameters"),
                });
            };
            let mut instance = properties_of(&output, out, class)?;
            if let Some(value) = header.get(key) {
                instance.insert(key.to_owned(), value.clone());
            }
            results.push(instance);
        }
        Ok(results)
    }

    fn connect(&self, namespace: &str) -> Result<IWbemServices, SourceError> {
        let Some(locator) = &self.locator else {
            return Err(SourceError {
                code: None,
                message: "WMI is not initialised".into(),
            });
        };
        // SAFETY: the BSTR arguments outlive the call; empty user, password, locale and
        // authority mean the caller's own identity on the local machine; no context.
        let services = unsafe {
            locator.ConnectServer(
                &BSTR::from(namespace),
                &BSTR::new(),
                &BSTR::new(),
                &BSTR::new(),
                WBEM_FLAG_CONNECT_USE_MAX_WAIT.0,
                &BSTR::new(),
                None,
            )
        }
        .map_err(|err| com_error(&format!("connecting to WMI namespace {namespace}"), &err))?;
        // Packet privacy: the BitLocker namespace refuses anything less.
        // SAFETY: `services` is a live proxy; the remaining pointers are None (defaults).
        unsafe {
            CoSetProxyBlanket(
                &services,
                RPC_C_AUTHN_WINNT,
                RPC_C_AUTHZ_NONE,
                None,
                RPC_C_AUTHN_LEVEL_PKT_PRIVACY,
                RPC_C_IMP_LEVEL_IMPERSONATE,
                None,
                EOAC_NONE,
            )
        }
        .map_err(|err| com_error("setting packet privacy on the WMI connection", &err))?;
        Ok(services)
    }
}

impl Drop for Wmi {
    fn drop(&mut self) {
        // The locator is a COM object: release it before COM goes.
        self.locator = None;
        if self.uninitialize {
            // SAFETY: balances the successful CoInitializeEx in `new`, on the same thread
            // (`Wmi` is neither Send nor Sync, as it holds COM pointers).
            unsafe { CoUninitialize() };
        }
    }
}

fn enumerate(
    services: &IWbemServices,
    wql: &str,
    class: &str,
) -> Result<Vec<IWbemClassObject>, SourceError> {
    // SAFETY: the BSTRs live across the call; forward-only, semi-synchronous enumeration.
    let rows = unsafe {
        services.ExecQuery(
            &BSTR::from("WQL"),
            &BSTR::from(wql),
            WBEM_FLAG_FORWARD_ONLY | WBEM_FLAG_RETURN_IMMEDIATELY,
            None,
        )
    }
    .map_err(|err| com_error(&format!("querying {class}"), &err))?;
    let mut objects = Vec::new();
    loop {
        let mut batch = [None];
        let mut returned = 0u32;
        // SAFETY: `batch` has room for the one object asked for; `returned` says how many came.
        let status = unsafe { rows.Next(WBEM_INFINITE, &mut batch, &mut returned) };
        // Errors arrive here too (e.g. an unknown class with a semi-synchronous query).
        status
            .ok()
            .map_err(|err| com_error(&format!("reading {class}"), &err))?;
        match (returned, batch[0].take()) {
            (1, Some(object)) => objects.push(object),
            _ => break,
        }
    }
    Ok(objects)
}

fn properties_of(
    object: &IWbemClassObject,
    properties: &[&str],
    class: &str,
) -> Result<Instance, SourceError> {
    let mut instance = Instance::new();
    for &property in properties {
        let name = HSTRING::from(property);
        let mut variant = VARIANT::default();
        let mut cim_type = 0i32;
        // SAFETY: `name` is NUL-terminated and outlives the call; `variant` is initialised
        // (VT_EMPTY) and cleared below whatever `Get` put in it.
        let got = unsafe {
            object.Get(
                PCWSTR(name.as_ptr()),
                0,
                &mut variant,
                Some(&mut cim_type),
                None,
            )
        };
        // SAFETY: the VARIANT was filled by `Get` (or is still VT_EMPTY).
        let value = got.map(|()| unsafe { value_of(&variant, cim_type) });
        // SAFETY: frees what the VARIANT owns (a BSTR or an array) exactly once.
        let _ = unsafe { VariantClear(&mut variant) };
        match value {
            Ok(value) => {
                instance.insert(property.to_owned(), value);
            }
            // A property the class does not have is left out (the class's version decides).
            Err(err) if err.code().0 as u32 == 0x8004_1002 => {}
            Err(err) => {
                return Err(com_error(&format!("reading {class}.{property}"), &err));
            }
        }
    }
    Ok(instance)
}

/// The value of a VARIANT that WMI filled, interpreted with the property's CIM type.
///
/// # Safety
/// `variant` must be a valid VARIANT whose union member matches its `vt`.
unsafe fn value_of(variant: &VARIANT, cim_type: i32) -> Value {
    // SAFETY: reading `vt` is always valid; each union member is read only under its `vt`.
    unsafe {
        let inner = &variant.Anonymous.Anonymous;
        let vt = inner.vt;
        let data = &inner.Anonymous;
        if vt.0 & VT_ARRAY.0 != 0 {
            return Value::Unsupported(format!("VT_ARRAY|{}", vt.0 & !VT_ARRAY.0));
        }
        let cim = cim_type & 0xFFF;
        match vt {
            VT_EMPTY | VT_NULL => Value::Null,
            VT_BOOL => Value::Bool(data.boolVal.as_bool()),
            VT_I1 => Value::Int(i64::from(data.cVal)),
            VT_UI1 => Value::Int(i64::from(data.bVal)),
            VT_I2 if cim == CIM_UINT16.0 || cim == CIM_UINT8.0 => {
                Value::Int(i64::from(data.iVal as u16))
            }
            VT_I2 => Value::Int(i64::from(data.iVal)),
            VT_UI2 => Value::Int(i64::from(data.uiVal)),
            VT_I4 | VT_INT if cim == CIM_UINT32.0 => Value::Int(i64::from(data.lVal as u32)),
            VT_I4 | VT_INT => Value::Int(i64::from(data.lVal)),
            VT_UI4 | VT_UINT => Value::Int(i64::from(data.ulVal)),
            VT_I8 => Value::Int(data.llVal),
            VT_UI8 => i64::try_from(data.ullVal).map_or_else(
                |_| Value::Unsupported("VT_UI8 beyond i64".into()),
                Value::Int,
            ),
            VT_BSTR => {
                let text = data.bstrVal.to_string();
                // WMI passes 64-bit integers as decimal text.
                if cim == CIM_UINT64.0 || cim == CIM_SINT64.0 {
                    text.parse::<i64>().map_or_else(
                        |_| Value::Unsupported(format!("CIM {cim} {text:?}")),
                        Value::Int,
                    )
                } else {
                    Value::Text(text)
                }
            }
            other => Value::Unsupported(format!("VT {}", other.0)),
        }
    }
}

fn com_error(what: &str, err: &windows::core::Error) -> SourceError {
    SourceError {
        code: Some(i64::from(err.code().0 as u32)),
        message: what.to_owned(),
    }
}
