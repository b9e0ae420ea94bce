//! A mirror's answer that came after its delivery's record was written
//! (`StoreEvent::Mirrored`): put into the history's record and the list's.

use super::App;
use crate::delivery::{Delivery, MirrorRecord};

impl App {
    /// Mirror `index` of delivery `id` answered: shown in its row and
    /// detail from now on. Nothing to do once the delivery has left.
    pub(crate) fn mirrored(&mut self, id: u64, index: usize, mirror: &MirrorRecord) {
        let set = |d: &mut Delivery| {
            if let Some(slot) = d.mirrors.get_mut(index) {
                slot.clone_from(mirror);
            }
        };
        if let Some(updated) = self.history.update(id, set)
            && let Ok(at) = self.list.binary_search_by_key(&id, |d| d.id)
        {
            self.list[at] = updated;
        }
    }
}
