pub fn render(_p: &crate::Plan, _c: &crate::Catalog) -> String { String::new() }
