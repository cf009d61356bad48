// The entry point: render, then resume the tab's session if it has one.
import './styles.css';
import { render } from 'preact';
import { Session } from './session';
import { App } from './ui/App';

const session = new Session();
const root = document.getElementById('app');
if (root !== null) render(<App session={session} />, root);
void session.restore();
